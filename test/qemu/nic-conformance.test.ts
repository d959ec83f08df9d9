import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import type { NicBackend } from '../../src/qemu/device-props.ts';
import { libvirtArgs, libvirtCaseDef, ourArgs, valuesOf as after } from './helpers/libvirt-args.ts';

/**
 * libvirt's xml2argv cases for NICs QEMU backs (test/data/libvirt-qemuxml2argv, ORIGIN.md): the
 * -netdev of each interface and its NIC -device must equal libvirt's byte for byte.
 */
const CASES: readonly { name: string; backends: ReadonlyMap<string, NicBackend>; nics: number }[] = [
  // A bridge: the tap as libvirt's test passes it (fd 102, vhost fd 44).
  { name: 'net-midonet', backends: new Map([['net0', { type: 'tap', fd: '102', vhostfd: '44' }]]), nics: 1 },
  { name: 'net-linkstate', backends: new Map(), nics: 2 },
];

const isNic = (d: string): boolean => 'netdev' in (JSON.parse(d) as object);

for (const c of CASES) {
  test(`libvirt xml2argv NICs: ${c.name}`, () => {
    const theirs = libvirtArgs(c.name);
    const ours = ourArgs(libvirtCaseDef(c.name), { nicBackends: c.backends });
    assert.equal(after(ours, '-netdev').length, c.nics);
    assert.deepEqual(after(ours, '-netdev'), after(theirs, '-netdev'));
    assert.deepEqual(after(ours, '-device').filter(isNic), after(theirs, '-device').filter(isNic));
  });
}

test('a tap QEMU opens by name, and an MTU on virtio-net', () => {
  const def = readDomainXml(
    `<domain type='kvm'><name>n</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>
  <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/><model type='virtio'/><mtu size='9000'/></interface>
</devices></domain>`,
    'n.xml',
  );
  const ours = ourArgs(def, { nicBackends: new Map([['net0', { type: 'tap', ifname: 'vnet3' }]]) });
  assert.deepEqual(after(ours, '-netdev'), [
    '{"type":"tap","ifname":"vnet3","script":"no","downscript":"no","id":"hostnet0"}',
  ]);
  const nic = JSON.parse(after(ours, '-device').find(isNic) ?? '{}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(nic).slice(0, 5), ['driver', 'host_mtu', 'netdev', 'id', 'mac']);
  assert.equal(nic['host_mtu'], 9000);
});
