import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDomainXml } from '../../src/conf/domain/format.ts';
import { expandHybrids, markHybridNetworks } from '../../src/conf/domain/hybrid.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import type { DomainDef, GuestAddress, InterfaceDef } from '../../src/conf/domain/types.ts';
import { PassthruError } from '../../src/conf/error.ts';
import { formatPciAddress } from '../../src/conf/pci-address.ts';
import { hostdevRequests } from '../../src/hostdev/request.ts';
import { buildArgv } from '../../src/qemu/argv.ts';
import { completeDefinition } from '../../src/qemu/define-def.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { vfioPresentations } from '../../src/qemu/native.ts';

/** [seed 002] hostdev-hybrid below the daemon: define gives both halves their guest addresses,
 *  start keeps them, and QEMU gets the failover pair the interface stands for. */
const MAC = '52:54:00:7a:00:01';
const hybridXml = (devices: string): string => `<domain type='kvm'>
  <name>hy</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <interface type='user'><mac address='52:54:00:7a:00:09'/><model type='virtio'/></interface>
    ${devices}
  </devices>
</domain>`;
const HYBRID = `<interface type='hostdev-hybrid' managed='yes'>
      <mac address='${MAC}'/>
      <source><address type='pci' domain='0x0000' bus='0x06' slot='0x02' function='0x3'/></source>
      <vlan><tag id='42'/></vlan>
    </interface>`;

const addr = (a: GuestAddress | undefined): string => (a?.type === 'pci' ? formatPciAddress(a) : String(a?.type));
const hybridOf = (def: DomainDef): Extract<InterfaceDef, { type: 'hostdev-hybrid' }> => {
  const i = def.devices.interfaces.find((x) => x.type === 'hostdev-hybrid');
  if (i?.type !== 'hostdev-hybrid') throw new Error('no hybrid interface');
  return i;
};

test('define gives the VF and its standby a guest PCI address each, each on its own root port, and keeps them', () => {
  const defined = completeDefinition(readDomainXml(hybridXml(HYBRID)));
  const h = hybridOf(defined);
  const vf = h.guestAddress;
  const standby = h.standby?.guestAddress;
  assert.ok(vf?.type === 'pci' && standby?.type === 'pci');
  assert.notEqual(vf.bus, standby.bus, 'one root port each (both hot-pluggable)');
  assert.equal(vf.slot, 0);
  assert.equal(standby.slot, 0);
  const ports = defined.devices.controllers.filter((c) => c.model === 'pcie-root-port').map((c) => c.index);
  assert.ok(ports.includes(vf.bus) && ports.includes(standby.bus));

  // The persistent XML holds both; read back, defined again and started, nothing moves.
  const text = formatDomainXml(defined, { inactive: true });
  assert.match(text, /<standby>\s*<address type='pci'/);
  const again = completeDefinition(readDomainXml(text));
  assert.equal(formatDomainXml(again, { inactive: true }), text);
  const live = prepareLiveDef(again);
  const lh = hybridOf(live);
  assert.equal(addr(lh.guestAddress), addr(vf));
  assert.equal(addr(lh.standby?.guestAddress), addr(standby));
  // Aliases: the VF is a hostdevN, the standby a netN of its own.
  assert.equal(lh.alias, 'hostdev0');
  assert.match(lh.standby?.alias ?? '', /^net\d+$/);
  assert.notEqual(lh.standby?.alias, live.devices.interfaces[0]?.alias);
  // The live XML shows both addresses; the migratable one too (the destination keeps them).
  for (const flags of [{ live: true }, { migratable: true }]) {
    const xml = formatDomainXml(live, flags);
    assert.ok(xml.includes(`bus='0x${standby.bus.toString(16).padStart(2, '0')}'`), xml);
    assert.match(xml, new RegExp(`<alias name='${lh.standby?.alias ?? '?'}'/>`));
  }
});

test('a standby address written by the user is kept, and one already taken is refused naming the standby', () => {
  const mine = HYBRID.replace(
    '<vlan>',
    "<standby><address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/></standby><vlan>",
  );
  const h = hybridOf(completeDefinition(readDomainXml(hybridXml(mine))));
  assert.equal(addr(h.standby?.guestAddress), '0000:07:00.0');
  const clash = mine.replace(
    '</interface>',
    "<address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/></interface>",
  );
  assert.throws(
    () => completeDefinition(readDomainXml(hybridXml(clash))),
    (e: unknown) =>
      e instanceof PassthruError &&
      /0000:07:00\.0 of the standby of interface 52:54:00:7a:00:01 .*is already in use by interface 52:54:00:7a:00:01/.test(
        e.message,
      ),
  );
});

test('argv: a virtio-net standby (failover=on) and the VF (failover_pair_id), one MAC, each on its own root port', () => {
  const live = prepareLiveDef(completeDefinition(readDomainXml(hybridXml(HYBRID))));
  const h = hybridOf(live);
  const standbyAlias = h.standby?.alias ?? '';
  const argv = buildArgv(live, {
    accel: 'tcg',
    qmpSocket: '/q',
    consoleLog: '/c',
    pidfile: '/p',
    hostDevices: vfioPresentations(live),
    nicBackends: new Map([[standbyAlias, { type: 'tap', fd: '3' }]]),
  });
  const devices = argv.flatMap((a, i) => (argv[i - 1] === '-device' ? [JSON.parse(a) as Record<string, unknown>] : []));
  const netdevs = argv.flatMap((a, i) => (argv[i - 1] === '-netdev' ? [JSON.parse(a) as Record<string, unknown>] : []));
  const standby = devices.find((d) => d['id'] === standbyAlias);
  const vf = devices.find((d) => d['id'] === 'hostdev0');
  assert.deepEqual(standby, {
    driver: 'virtio-net-pci',
    failover: true,
    netdev: `host${standbyAlias}`,
    id: standbyAlias,
    mac: MAC,
    bus: `pci.${(h.standby?.guestAddress as { bus: number }).bus}`,
    addr: '0x0',
  });
  assert.deepEqual(vf, {
    driver: 'vfio-pci',
    host: '0000:06:02.3',
    id: 'hostdev0',
    failover_pair_id: standbyAlias,
    bus: `pci.${(h.guestAddress as { bus: number }).bus}`,
    addr: '0x0',
  });
  // The standby's backend is the macvtap's descriptor, as for a direct NIC.
  assert.deepEqual(
    netdevs.find((n) => n['id'] === `host${standbyAlias}`),
    { type: 'tap', fd: '3', id: `host${standbyAlias}` },
  );
  // The standby comes before the VF: QEMU's virtio-net must exist to hide its primary.
  assert.ok(argv.indexOf(JSON.stringify(standby)) < argv.indexOf(JSON.stringify(vf)));
  // The root ports under them are distinct and exist.
  assert.notEqual(standby?.bus, vf?.bus);
  for (const bus of [standby?.bus, vf?.bus]) assert.ok(argv.some((a) => a.includes(`"id":"${bus}"`)));
});

test('the VF is programmed like a hostdev interface: the MAC and VLAN, one request', () => {
  const live = prepareLiveDef(completeDefinition(readDomainXml(hybridXml(HYBRID))));
  const reqs = hostdevRequests(live);
  assert.equal(reqs.length, 1);
  assert.equal(reqs[0]?.alias, 'hostdev0');
  assert.equal(reqs[0]?.net?.mac, MAC);
  assert.deepEqual(
    reqs[0]?.net?.vlan?.tags.map((t) => t.id),
    [42],
  );
});

test('expandHybrids: the failover pair a user would write, standby first; other interfaces untouched', () => {
  const live = prepareLiveDef(completeDefinition(readDomainXml(hybridXml(HYBRID))));
  const h = hybridOf(live);
  const x = expandHybrids({
    ...live,
    devices: {
      ...live.devices,
      interfaces: live.devices.interfaces.map((i) =>
        i === h ? { ...h, standby: { ...h.standby, parent: 'enp6s0f0', targetDev: 'macvtap4' } } : i,
      ),
    },
  }).devices.interfaces;
  assert.deepEqual(
    x.map((i) => [i.type, i.teaming?.type]),
    [
      ['user', undefined],
      ['direct', 'persistent'],
      ['hostdev', 'transient'],
    ],
  );
  const [, standby, primary] = x;
  assert.ok(standby?.type === 'direct' && primary?.type === 'hostdev');
  assert.deepEqual(
    [standby.dev, standby.mode, standby.model, standby.mac, standby.targetDev],
    ['enp6s0f0', 'bridge', 'virtio', MAC, 'macvtap4'],
  );
  assert.deepEqual(primary.teaming, { type: 'transient', persistent: h.standby?.alias });
  assert.equal(primary.mac, MAC);
  assert.equal(addr(primary.guestAddress), addr(h.guestAddress));
  assert.equal(addr(standby.guestAddress), addr(h.standby?.guestAddress));
});

test('a network interface on a hostdev-hybrid network gets its standby address at define, and runs as a pair once its VF is given', () => {
  const xml = hybridXml(
    "<interface type='network'><mac address='52:54:00:7a:00:02'/><source network='hy'/></interface>",
  );
  const plain = completeDefinition(readDomainXml(xml));
  assert.equal(
    plain.devices.interfaces.some((i) => i.type === 'network' && i.standby !== undefined),
    false,
    'a hostdev network gives no standby',
  );
  const defined = completeDefinition(markHybridNetworks(readDomainXml(xml), (n) => n === 'hy'));
  const net = defined.devices.interfaces.find((i) => i.type === 'network');
  assert.ok(net?.type === 'network' && net.standby?.guestAddress?.type === 'pci');
  // At start the network's VF arrives (actual type hostdev-hybrid): the live XML shows a hybrid.
  const started = prepareLiveDef({
    ...defined,
    devices: {
      ...defined.devices,
      interfaces: defined.devices.interfaces.map((i) =>
        i.type === 'network'
          ? {
              ...i,
              actual: {
                type: 'hostdev-hybrid',
                source: { managed: true, address: { domain: 0, bus: 6, slot: 2, function: 5 } },
              },
            }
          : i,
      ),
    },
  });
  const liveXml = formatDomainXml(started, { live: true });
  assert.match(liveXml, /<interface type='hostdev-hybrid' managed='yes'>/);
  assert.match(formatDomainXml(started, { status: true }), /<actual type='hostdev-hybrid' managed='yes'>/);
  const pair = expandHybrids(started).devices.interfaces.filter((i) => i.teaming !== undefined);
  assert.deepEqual(
    pair.map((i) => i.type),
    ['direct', 'network'],
  );
  const s = started.devices.interfaces.find((i) => i.type === 'network');
  assert.ok(s?.type === 'network');
  assert.equal(addr(s.standby?.guestAddress), addr(net.standby.guestAddress));
});

test('validate: the standby is virtio, and a hybrid takes no <teaming>', () => {
  assert.throws(
    () => readDomainXml(hybridXml(HYBRID.replace('<vlan>', "<model type='e1000e'/><vlan>"))),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.message.includes("standby of a hostdev-hybrid interface is <model type='virtio'/>"),
  );
});
