import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDaemon } from '../../src/daemon/open.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { formatDomainXml } from '../../src/conf/domain/format.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import type { InterfaceDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { withStandby } from '../../src/conf/domain/hybrid.ts';
import { parsePciAddress } from '../../src/conf/pci-address.ts';
import { formatStatus, parseDefinition } from '../../src/daemon/definitions.ts';
import { checkHybridShape, hybridNetworks, refuseHybridHotplug, withStandbyParents } from '../../src/daemon/hybrid.ts';
import { applyLinkStates, plugHostNics, unplugHostNics } from '../../src/daemon/host-nics.ts';
import type { QmpClient } from '../../src/qemu/qmp.ts';
import { failoverPrimaries, checkMigratable } from '../../src/daemon/migration/checks.ts';
import { poolDevices } from '../../src/daemon/migration/unplug.ts';
import type { HostNetdevs, HostNicRequest } from '../../src/host/netdev.ts';
import { completeDefinition } from '../../src/qemu/define-def.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

/** [seed 002] The daemon's part of hostdev-hybrid: the standby's macvtap on the VF's PF. */
const MAC = '52:54:00:7a:01:01';
const live = prepareLiveDef(
  completeDefinition(
    readDomainXml(`<domain type='kvm'><name>hy</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type machine='q35'>hvm</type></os><devices>
  <interface type='hostdev-hybrid' managed='yes'><mac address='${MAC}'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x3'/></source></interface>
</devices></domain>`),
  ),
);
const VF = '0000:06:02.3';
const views = {
  vfOf: (a: { bus: number; slot: number; function: number }) =>
    Promise.resolve(
      a.bus === 6 && a.slot === 2 ? { pf: parsePciAddress('0000:06:00.0'), pfNetdev: 'enp6s0f0', index: 3 } : undefined,
    ),
};

function fakeNetdevs(): HostNetdevs & { asked: HostNicRequest[]; checked: HostNicRequest[]; removed: string[] } {
  const asked: HostNicRequest[] = [];
  const checked: HostNicRequest[] = [];
  const removed: string[] = [];
  return {
    backend: 'linux',
    asked,
    checked,
    removed,
    check: (req) => {
      checked.push(req);
      return req.kind === 'macvtap' && req.parent !== 'enp6s0f0'
        ? Promise.reject(new PassthruError('NO_DEVICE', `parent ${req.parent} missing`))
        : Promise.resolve();
    },
    plug: (req) => {
      asked.push(req);
      return Promise.resolve({ kind: 'tap', name: 'macvtap5', fd: 42 });
    },
    unplug: (name) => {
      removed.push(name);
      return Promise.resolve();
    },
  };
}

const hybridOf = (ifaces: readonly InterfaceDef[]) => {
  const h = ifaces.find((i) => i.type === 'hostdev-hybrid');
  assert.ok(h?.type === 'hostdev-hybrid');
  return h;
};

test('start: the standby goes on a macvtap in bridge mode of the VF PF, with the guest MAC; its fd goes to QEMU', async () => {
  const netdevs = fakeNetdevs();
  const placed = await withStandbyParents(live, views, netdevs);
  assert.equal(hybridOf(placed.devices.interfaces).standby?.parent, 'enp6s0f0');
  // Checked before anything is taken.
  assert.deepEqual(netdevs.checked, [{ kind: 'macvtap', parent: 'enp6s0f0', mode: 'bridge', mac: MAC }]);
  const plugged = await plugHostNics(placed, netdevs);
  assert.deepEqual(netdevs.asked, [{ kind: 'macvtap', parent: 'enp6s0f0', mode: 'bridge', mac: MAC }]);
  const h = hybridOf(plugged.live.devices.interfaces);
  assert.equal(h.standby?.targetDev, 'macvtap5');
  assert.deepEqual([...plugged.backends], [[h.standby?.alias, { type: 'tap', fd: '3' }]]);
  assert.deepEqual(plugged.fds, [42]);
  // The live XML names the macvtap and the PF; the migratable XML does not (B makes its own).
  assert.match(formatDomainXml(plugged.live), /<source dev='enp6s0f0' mode='bridge'\/>\s*<target dev='macvtap5'\/>/);
  assert.doesNotMatch(formatDomainXml(plugged.live, { migratable: true }), /macvtap5|enp6s0f0/);
  // Stop: the macvtap goes.
  await unplugHostNics(plugged.live, netdevs);
  assert.deepEqual(netdevs.removed, ['macvtap5']);
});

test('start: a hybrid on a device that is no VF, or whose PF netdev is missing, is refused before anything is taken', async () => {
  const netdevs = fakeNetdevs();
  const notVf = { vfOf: () => Promise.resolve(undefined) };
  await assert.rejects(
    withStandbyParents(live, notVf, netdevs),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.code === 'CONFIG_UNSUPPORTED' &&
      e.message.includes(`interface ${MAC}: host device ${VF} is not an SR-IOV VF`),
  );
  const gonePf = {
    vfOf: () => Promise.resolve({ pf: parsePciAddress('0000:06:00.0'), pfNetdev: 'enp9s0', index: 3 }),
  };
  await assert.rejects(withStandbyParents(live, gonePf, netdevs), /parent enp9s0 missing/);
  assert.deepEqual(netdevs.asked, []);
});

test('migration: the hybrid VF is a failover primary of its standby; it moves, and --unplug-hostdevs leaves it to QEMU', () => {
  const h = hybridOf(live.devices.interfaces);
  assert.deepEqual(failoverPrimaries(live), [
    { alias: 'hostdev0', address: parsePciAddress(VF), mac: MAC, standby: h.standby?.alias },
  ]);
  checkMigratable(live);
  assert.deepEqual(poolDevices(live), []);
});

test('hot-plug and hot-unplug of a hybrid are refused naming it', () => {
  for (const verb of ['hot-plugged', 'hot-unplugged'] as const) {
    assert.throws(
      () => refuseHybridHotplug(live.devices.interfaces, verb),
      (e: unknown) =>
        e instanceof PassthruError &&
        e.code === 'CONFIG_UNSUPPORTED' &&
        e.message.startsWith(`interface ${MAC}: a hostdev-hybrid interface cannot be ${verb}`),
    );
  }
});

test('hybridNetworks: a network is hybrid by its forward mode; an unknown one is not', () => {
  const nets: Record<string, { forward?: { mode: string } }> = {
    hy: { forward: { mode: 'hostdev-hybrid' } },
    plain: { forward: { mode: 'hostdev' } },
  };
  const is = hybridNetworks({
    defs: () => ({
      network: (n: string) => {
        const d = nets[n];
        if (!d) throw new Error('no such network');
        return d;
      },
    }),
  });
  assert.deepEqual(['hy', 'plain', 'nope'].map(is), [true, false, false]);
});

test('a daemon restarted under a running hybrid finds its macvtap in the status XML and removes it at stop', async () => {
  const netdevs = fakeNetdevs();
  const plugged = await plugHostNics(await withStandbyParents(live, views, netdevs), netdevs);
  const reread = parseDefinition(formatStatus(plugged.live), 'status');
  await unplugHostNics(reread, netdevs);
  assert.deepEqual(netdevs.removed, ['macvtap5']);
  assert.equal(
    hybridOf(reread.devices.interfaces).standby?.alias,
    hybridOf(plugged.live.devices.interfaces).standby?.alias,
  );
});

test('migration check: a network interface with a standby needs a hybrid network of the same name on the destination, and one without must not find one', () => {
  const sent =
    readDomainXml(`<domain type='kvm'><name>hy</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type machine='q35'>hvm</type></os><devices>
  <interface type='network'><mac address='${MAC}'/><source network='hy'/><standby><alias name='net1'/></standby><alias name='hostdev0'/></interface>
</devices></domain>`);
  const given = (type: 'hostdev' | 'hostdev-hybrid', from = sent) => ({
    ...from,
    devices: {
      ...from.devices,
      interfaces: from.devices.interfaces.map((i) =>
        i.type === 'network'
          ? { ...i, actual: { type, source: { managed: true, address: parsePciAddress('0000:06:02.6') } } }
          : i,
      ),
    },
  });
  checkHybridShape(sent, given('hostdev-hybrid'));
  assert.throws(
    () => checkHybridShape(sent, given('hostdev')),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.code === 'OPERATION_INVALID' &&
      e.message.includes("network 'hy' of the destination is not a hostdev-hybrid network"),
  );
  const plain = {
    ...sent,
    devices: {
      ...sent.devices,
      interfaces: sent.devices.interfaces.map((i) => withStandby(i, undefined)),
    },
  };
  checkHybridShape(plain, given('hostdev', plain));
  assert.throws(
    () => checkHybridShape(plain, given('hostdev-hybrid', plain)),
    /network 'hy' of the destination is a hostdev-hybrid network, but interface hostdev0 has no virtio standby/,
  );
});

test('the daemon: define and attach --config give a hybrid network interface its standby address; a hybrid on a PF is refused at start, host unchanged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'passthru-hybrid-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  const daemon = await openDaemon({
    host: `sim:${join(dir, 'host')}`,
    stateDir: join(dir, 'state'),
    log: silentLogger(),
  });
  try {
    await daemon.handle({
      kind: 'poolDefine',
      pool: 'network',
      xml: `<network><name>hy</name><forward mode='hostdev-hybrid' managed='yes'><pf dev='enp6s0f0'/></forward></network>`,
    });
    const dom = (devices: string): string =>
      `<domain type='kvm'><name>hyd</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type machine='q35'>hvm</type><kernel>/k</kernel></os><devices>${devices}</devices></domain>`;
    await daemon.handle({
      kind: 'define',
      xml: dom(`<interface type='network'><mac address='${MAC}'/><source network='hy'/></interface>`),
    });
    const standbys = async (): Promise<string[]> => {
      const xml = (await daemon.handle({ kind: 'dumpxml', name: 'hyd', inactive: true })).xml;
      return [...xml.matchAll(/<standby>\s*<address type='pci' domain='0x0000' bus='(0x[0-9a-f]+)'/g)].map(
        (m) => m[1] ?? '',
      );
    };
    assert.equal((await standbys()).length, 1);
    await daemon.handle({
      kind: 'attachDevice',
      name: 'hyd',
      xml: `<interface type='network'><mac address='52:54:00:7a:01:02'/><source network='hy'/></interface>`,
      config: true,
    });
    const two = await standbys();
    assert.equal(two.length, 2);
    assert.notEqual(two[0], two[1]);

    // A hostdev-hybrid on a PF (no VF): refused before the host is touched.
    const pf1 = async () => (await daemon.handle({ kind: 'nodedevDumpxml', name: 'pci_0000_06_00_1' })).xml;
    const pfBefore = await pf1();
    assert.match(pfBefore, /<driver>\s*<name>i40e<\/name>/);
    await daemon.handle({
      kind: 'define',
      xml: dom(
        `<interface type='hostdev-hybrid' managed='yes'><mac address='52:54:00:7a:01:03'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x1'/></source></interface>`,
      ).replace('<name>hyd</name>', '<name>hypf</name>'),
    });
    await assert.rejects(
      daemon.handle({ kind: 'start', name: 'hypf' }),
      (e: unknown) => e instanceof PassthruError && e.message.includes('host device 0000:06:00.1 is not an SR-IOV VF'),
    );
    assert.equal(await pf1(), pfBefore);
  } finally {
    await daemon.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("<link state='down'/> on a hybrid: the standby is set down over QMP before the guest runs (the VF's link is programmed on the VF)", async () => {
  const down = prepareLiveDef(
    completeDefinition(
      readDomainXml(`<domain type='kvm'><name>hy</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type machine='q35'>hvm</type></os><devices>
  <interface type='hostdev-hybrid' managed='yes'><mac address='${MAC}'/><source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x3'/></source><link state='down'/></interface>
</devices></domain>`),
    ),
  );
  const calls: unknown[] = [];
  const qmp = {
    execute: (cmd: string, args?: object) => Promise.resolve(calls.push([cmd, args])),
  } as unknown as QmpClient;
  await applyLinkStates(down, qmp);
  assert.deepEqual(calls, [['set_link', { name: hybridOf(down.devices.interfaces).standby?.alias, up: false }]]);
});
