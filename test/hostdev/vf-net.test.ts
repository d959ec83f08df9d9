import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { injectFault } from '../../src/host/sim/faults.ts';
import { openSimHost, type SimKernel } from '../../src/host/sim/kernel.ts';
import { setSwitchAnswer } from '../../src/host/sim/state.ts';
import { hostOps } from '../../src/hostdev/host-ops.ts';
import { HostdevManager } from '../../src/hostdev/manager.ts';
import { hostdevRequests } from '../../src/hostdev/request.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { simSnapshot, snapshotDiff } from '../helpers/sim-snapshot.ts';

/** VF attributes from the definition to the VF table and back, through the device manager. */

const UUID = 'c7a5fdbd-edaf-9455-926a-d65c16db1809';

async function setup(profile: string): Promise<{
  kernel: SimKernel;
  host: string;
  m: HostdevManager;
  done: () => Promise<void>;
}> {
  const base = await mkdtemp(join(tmpdir(), 'passthru-vfnet-'));
  const host = join(base, 'host');
  await createSimHost(host, profile);
  const kernel = await openSimHost(host);
  const m = await HostdevManager.open(hostOps(kernel), join(base, 'state'), silentLogger());
  return { kernel, host, m, done: () => rm(base, { recursive: true, force: true }) };
}

function domain(devices: string): ReturnType<typeof readDomainXml> {
  return readDomainXml(`<domain type='kvm'>
  <name>web1</name>
  <uuid>${UUID}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
${devices}
  </devices>
</domain>`);
}

const pci = (bus: string, slot: string, fn: string): string =>
  `<address type='pci' domain='0x0000' bus='${bus}' slot='${slot}' function='${fn}'/>`;

/** mlx5 (ConnectX-5): every attribute; a second VF with an 802.1Qbh port profile. */
const RICH = `<interface type='hostdev' managed='yes' trustGuestRxFilters='yes' spoofCheck='yes'>
  <mac address='52:54:00:00:10:01'/>
  <source>${pci('0x3b', '0x00', '0x3')}</source>
  <vlan><tag id='100' qos='5' protocol='802.1ad'/></vlan>
  <bandwidth><outbound average='125000' floor='12500'/></bandwidth>
  <link state='down'/>
  <alias name='ua-rich'/>
</interface>
<interface type='hostdev' managed='yes'>
  <mac address='52:54:00:00:10:02'/>
  <source>${pci('0x3b', '0x00', '0x4')}</source>
  <virtualport type='802.1Qbh'><parameters profileid='finance'/></virtualport>
  <alias name='ua-qbh'/>
</interface>`;

test('every attribute from the XML reaches the VF, the port profile is associated, and release restores the host', async () => {
  const { kernel, host, m, done } = await setup('mellanox-cx5');
  try {
    const before = await simSnapshot(host);
    await m.prepare('web1', hostdevRequests(domain(RICH)));
    const rows = await kernel.vfTable('ens3f0np0');
    const r = rows[1];
    // average 125000 KiB/s = 1024 Mbit/s, floor 12500 KiB/s = 102 Mbit/s.
    assert.deepEqual(
      [r?.mac, r?.vlan, r?.qos, r?.vlanProto, r?.spoofchk, r?.trust, r?.linkState, r?.minTxRate, r?.maxTxRate],
      ['52:54:00:00:10:01', 100, 5, '802.1ad', true, true, 'disable', 102, 1024],
    );
    assert.equal(rows[2]?.mac, '52:54:00:00:10:02');
    assert.equal(rows[2]?.vlan, 0);
    assert.deepEqual(await kernel.vfPortStatus('ens3f0np0', 2), {
      profile: { type: '802.1Qbh', profileid: 'finance', instanceUuid: UUID },
      request: 'associate',
      response: 'success',
    });
    await m.release('web1');
    assert.equal(await kernel.vfPortStatus('ens3f0np0', 2), undefined);
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('incoming migration pre-associates the port profile, associates it when the guest arrives, and release disassociates', async () => {
  const { kernel, host, m, done } = await setup('mellanox-cx5');
  try {
    const before = await simSnapshot(host);
    await m.prepare('web1', hostdevRequests(domain(RICH), { incoming: true }));
    assert.equal((await kernel.vfPortStatus('ens3f0np0', 2))?.request, 'preassociate-rr');
    assert.deepEqual(await m.associateIncoming('web1'), ['ua-qbh']);
    assert.deepEqual(await kernel.vfPortStatus('ens3f0np0', 2), {
      profile: { type: '802.1Qbh', profileid: 'finance', instanceUuid: UUID },
      request: 'associate',
      response: 'success',
    });
    // Nothing left to associate: a second call asks the switch nothing.
    assert.deepEqual(await m.associateIncoming('web1'), []);
    await m.release('web1');
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('802.1Qbg: PREASSOCIATE for an incoming migration, then ASSOCIATE', async () => {
  const { kernel, m, done } = await setup('mellanox-cx5');
  try {
    const qbg = `<interface type='hostdev' managed='yes'>
  <mac address='52:54:00:00:10:03'/>
  <source>${pci('0x3b', '0x00', '0x5')}</source>
  <virtualport type='802.1Qbg'><parameters managerid='11' typeid='1193047' typeidversion='2' instanceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>
</interface>`;
    await m.prepare('web1', hostdevRequests(domain(qbg), { incoming: true }));
    assert.equal((await kernel.vfPortStatus('ens3f0np0', 3))?.request, 'preassociate');
    await m.associateIncoming('web1');
    assert.equal((await kernel.vfPortStatus('ens3f0np0', 3))?.request, 'associate');
    await m.release('web1');
    assert.equal(await kernel.vfPortStatus('ens3f0np0', 3), undefined);
  } finally {
    await done();
  }
});

test('a switch that refuses the association of an arrived guest: the error says so, the pre-association is withdrawn, release restores the host', async () => {
  const { kernel, host, m, done } = await setup('mellanox-cx5');
  try {
    const before = await simSnapshot(host);
    await m.prepare('web1', hostdevRequests(domain(RICH), { incoming: true }));
    await setSwitchAnswer(host, 'finance', { answer: 'failure', response: 'insufficient-resources' });
    await assert.rejects(m.associateIncoming('web1'), (e: unknown) => {
      assert.ok(e instanceof PassthruError);
      assert.match(e.message, /cannot associate VF 2 of PF ens3f0np0 with 802.1Qbh port profile 'finance'/);
      return true;
    });
    await m.release('web1');
    assert.equal(await kernel.vfPortStatus('ens3f0np0', 2), undefined);
    const diff = snapshotDiff(before, await simSnapshot(host)).filter((d) => !d.includes('switch.json'));
    assert.deepEqual(diff, []);
  } finally {
    await done();
  }
});

/** Asserts that prepare refuses with a message containing `text` and leaves the host as it was. */
async function refusedUnchanged(
  profile: string,
  devices: string,
  text: string,
  arm?: (host: string) => Promise<void>,
): Promise<PassthruError> {
  const { host, m, done } = await setup(profile);
  try {
    await arm?.(host);
    const before = await simSnapshot(host);
    let caught: unknown;
    await m.prepare('web1', hostdevRequests(domain(devices))).catch((e: unknown) => {
      caught = e;
    });
    assert.ok(caught instanceof PassthruError, `prepare was not refused: ${String(caught)}`);
    assert.ok(caught.message.includes(text), caught.message);
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), [], 'the host is unchanged');
    assert.deepEqual(m.held('web1'), []);
    return caught;
  } finally {
    await done();
  }
}

const igbVf = (inner: string, attrs = ''): string => `<interface type='hostdev' managed='yes'${attrs}>
  <mac address='52:54:00:00:20:01'/>
  <source>${pci('0x01', '0x10', '0x2')}</source>
  ${inner}
</interface>`;

test('a setting the PF driver cannot do is refused before anything changes, naming the driver', async () => {
  const e = await refusedUnchanged(
    'intel-82576',
    igbVf("<link state='up'/>", " trustGuestRxFilters='yes'"),
    'PF driver igb cannot set link state enable (EOPNOTSUPP); nothing was changed',
  );
  assert.equal(e.code, 'CONFIG_UNSUPPORTED');
  await refusedUnchanged(
    'intel-82576',
    igbVf("<bandwidth><outbound average='12500' floor='1250'/></bandwidth>"),
    'cannot set min TX rate 10 Mbps (EINVAL)',
  );
  await refusedUnchanged(
    'intel-82576',
    igbVf("<virtualport type='802.1Qbh'><parameters profileid='finance'/></virtualport>"),
    "cannot set port profile 802.1Qbh port profile 'finance' (EOPNOTSUPP)",
  );
});

test("libvirt's rule: no <vlan> beside a virtualport on a hostdev, in its words", async () => {
  const e = await refusedUnchanged(
    'mellanox-cx5',
    `<interface type='hostdev' managed='yes'>
  <source>${pci('0x3b', '0x00', '0x3')}</source>
  <vlan><tag id='42'/></vlan>
  <virtualport type='802.1Qbh'><parameters profileid='finance'/></virtualport>
</interface>`,
    'direct setting of the vlan tag is not allowed for hostdev devices using 802.1Qbh mode',
  );
  assert.equal(e.code, 'CONFIG_UNSUPPORTED');
});

test('a switch that refuses the profile: the VF is left as it was and the error says what the switch answered', async () => {
  await refusedUnchanged(
    'mellanox-cx5',
    RICH,
    "cannot associate VF 2 of PF ens3f0np0 with 802.1Qbh port profile 'finance': the switch answered 'bad-state'",
    (host) => setSwitchAnswer(host, 'finance', { answer: 'failure', response: 'bad-state' }),
  );
});

test('a PF that is down is refused naming the PF, before anything changes', async () => {
  const { kernel, host, m, done } = await setup('intel-x710-2port');
  try {
    await kernel.setNetdevUp('enp6s0f0', false);
    const before = await simSnapshot(host);
    await assert.rejects(
      m.prepare(
        'web1',
        hostdevRequests(
          domain(`<interface type='hostdev' managed='yes'><source>${pci('0x06', '0x02', '0x1')}</source></interface>`),
        ),
      ),
      /Unable to configure VF 1 of PF 'enp6s0f0' because the PF is not online/,
    );
    assert.deepEqual(snapshotDiff(before, await simSnapshot(host)), []);
  } finally {
    await done();
  }
});

test('injected faults: EPERM on clearing VLAN 0 and "still in reset" are absorbed; the VF still gets its MAC', async () => {
  const { kernel, host, m, done } = await setup('intel-x710-2port');
  try {
    await injectFault(host, { op: 'setVf', match: 'vf 1 VLAN 0', nth: 1, errno: 'EPERM' });
    await injectFault(host, { op: 'setVf', match: 'vf 1 admin MAC 52:54', nth: 1, errno: 'EAGAIN' });
    await m.prepare(
      'web1',
      hostdevRequests(
        domain(`<interface type='hostdev' managed='yes'>
  <mac address='52:54:00:00:30:01'/>
  <source>${pci('0x06', '0x02', '0x1')}</source>
</interface>`),
      ),
    );
    assert.equal((await kernel.vfTable('enp6s0f0'))[1]?.mac, '52:54:00:00:30:01');
    await m.release('web1');
    assert.equal((await kernel.vfTable('enp6s0f0'))[1]?.mac, '00:00:00:00:00:00');
  } finally {
    await done();
  }
});

const DUAL = (ports: string): string => `<hostdev mode='subsystem' type='pci' managed='yes'>
  <source>${pci('0x04', '0x00', '0x2').replace(" type='pci'", '')}</source>
  ${ports}
</hostdev>`;

test('a dual-port VF (ConnectX-3): each port set on its own PF netdev, every port restored; a missing port lists those it has', async () => {
  const { kernel, host, m, done } = await setup('mellanox-cx3-dualport');
  try {
    const before = await simSnapshot(host);
    await m.prepare(
      'web1',
      hostdevRequests(
        domain(
          DUAL(`<netdev port='1' trustGuestRxFilters='yes' spoofCheck='no'>
    <mac address='52:54:00:01:02:03'/><vlan><tag id='42' qos='2'/></vlan><link state='up'/>
  </netdev>
  <netdev port='2'><mac address='52:54:00:01:02:04'/><vlan><tag id='43'/></vlan></netdev>`),
        ),
      ),
    );
    const p1 = (await kernel.vfTable('ens2'))[1];
    const p2 = (await kernel.vfTable('ens2d1'))[1];
    assert.deepEqual(
      [p1?.mac, p1?.vlan, p1?.qos, p1?.trust, p1?.spoofchk, p1?.linkState],
      ['52:54:00:01:02:03', 42, 2, true, false, 'enable'],
    );
    assert.deepEqual([p2?.mac, p2?.vlan], ['52:54:00:01:02:04', 43]);
    await m.release('web1');
    // mlx4 refuses an all-zero admin MAC: the restore writes 02:00:00:00:00:00, as libvirt.
    for (const pf of ['ens2', 'ens2d1']) {
      const row = (await kernel.vfTable(pf))[1];
      assert.deepEqual([row?.mac, row?.vlan, row?.trust, row?.linkState], ['02:00:00:00:00:00', 0, false, 'auto'], pf);
    }
    const diff = snapshotDiff(before, await simSnapshot(host));
    assert.ok(
      diff.every((d) => d.includes('sim/netlink/0000:04:00.0')),
      diff.join('\n'),
    );
  } finally {
    await done();
  }
  await refusedUnchanged(
    'mellanox-cx3-dualport',
    DUAL("<netdev port='3'><mac address='52:54:00:01:02:05'/></netdev>"),
    'has no port 3: it has ports 1, 2',
  );
});
