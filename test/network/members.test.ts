import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { readNetworkXml } from '../../src/conf/network/read.ts';
import { readDevicePoolXml } from '../../src/conf/pool/read.ts';
import { readInventory } from '../../src/host/inventory.ts';
import type { SimKernel } from '../../src/host/sim/kernel.ts';
import { devicePoolMembers, hostView, networkMembers } from '../../src/network/members.ts';
import { simHost } from '../host/helpers.ts';

/** Pool membership resolved against a real sim host (intel-x710-2port: PFs enp6s0f0 at
 *  0000:06:00.0 and enp6s0f1 at 0000:06:00.1, 8 iavf VFs each at 06:02.x and 06:0a.x). */
let host: { kernel: SimKernel; done: () => void };
before(async () => {
  host = await simHost();
});
after(() => host.done());

const view = async () => hostView(await readInventory(host.kernel.sysfs));
const net = (forward: string) =>
  readNetworkXml(`<network><name>pool</name><forward mode='hostdev' managed='yes'>${forward}</forward></network>`);
const bdfs = (ms: readonly { bdf: string }[]) => ms.map((m) => m.bdf);
const error = (code: string, message: RegExp) => (e: unknown) =>
  e instanceof PassthruError && e.code === code && message.test(e.message);

test('<pf dev> is every VF of that PF, in VF order, and follows its VF count', async () => {
  const n = net("<pf dev='enp6s0f1'/>");
  const all = networkMembers(n, await view());
  assert.deepEqual(
    bdfs(all),
    Array.from({ length: 8 }, (_, i) => `0000:06:0a.${i}`),
  );
  assert.deepEqual(
    all.map((m) => m.vf?.index),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assert.ok(all.every((m) => m.vf?.pfNetdev === 'enp6s0f1' && m.present && m.driver === 'iavf'));
  const numvfs = '/sys/bus/pci/devices/0000:06:00.1/sriov_numvfs';
  await host.kernel.writeSysfs(numvfs, '0');
  await host.kernel.writeSysfs(numvfs, '3');
  try {
    assert.deepEqual(bdfs(networkMembers(n, await view())), ['0000:06:0a.0', '0000:06:0a.1', '0000:06:0a.2']);
  } finally {
    await host.kernel.writeSysfs(numvfs, '0');
    await host.kernel.writeSysfs(numvfs, '8');
  }
  assert.throws(
    () => networkMembers(net("<pf dev='eth9'/>"), { byBdf: new Map(), selectable: [], pfByNetdev: new Map() }),
    error('NO_DEVICE', /^Could not get Virtual functions on eth9$/),
  );
});

test('selectors with VF ranges pick exactly the named VFs, by PF netdev or PF address', async () => {
  const v = await view();
  assert.deepEqual(bdfs(networkMembers(net("<select pf='enp6s0f0#0,2-3,7'/>"), v)), [
    '0000:06:02.0',
    '0000:06:02.2',
    '0000:06:02.3',
    '0000:06:02.7',
  ]);
  assert.deepEqual(bdfs(networkMembers(net("<select pf='0000:06:00.1#5-6'/>"), v)), ['0000:06:0a.5', '0000:06:0a.6']);
  // Two selectors: the union, each VF once, in PF then VF order.
  assert.deepEqual(
    bdfs(networkMembers(net("<select pf='enp6s0f1#1'/><select pf='enp6s0f0#1-2'/><select pf='enp6s0f0#2'/>"), v)),
    ['0000:06:02.1', '0000:06:02.2', '0000:06:0a.1'],
  );
  // In a network a vendor selector takes VFs only, never the i40e PFs it also matches.
  const intel = networkMembers(net("<select vendor='8086' driver='iavf' numa='0'/>"), v);
  assert.equal(intel.length, 16);
  assert.ok(intel.every((m) => m.vf !== undefined));
  assert.deepEqual(networkMembers(net("<select vendor='8086' numa='1'/>"), v), []);
  assert.deepEqual(networkMembers(net("<select device='1572'/>"), v), [], 'the PF device id matches no VF');
});

test("an explicit <address> must be a VF, with libvirt's message", async () => {
  const v = await view();
  const ok = net("<address type='pci' domain='0' bus='6' slot='2' function='4'/>");
  assert.deepEqual(bdfs(networkMembers(ok, v)), ['0000:06:02.4']);
  assert.throws(
    () => networkMembers(net("<address type='pci' domain='0' bus='6' slot='0' function='1'/>"), v),
    error('DEVICE_NOT_ASSIGNABLE', /^device '0000:06:00.1' in network 'pool' is not an SR-IOV Virtual Function$/),
  );
  assert.throws(
    () => networkMembers(net("<address type='pci' domain='0' bus='0x33' slot='0' function='0'/>"), v),
    (e: unknown) =>
      e instanceof PassthruError && e.message.includes('not an SR-IOV') && e.hint === 'the host has no such PCI device',
  );
  assert.throws(
    () =>
      networkMembers(
        readNetworkXml("<network><name>br</name><forward mode='bridge'/><bridge name='br0'/></network>"),
        v,
      ),
    error('CONFIG_UNSUPPORTED', /forward mode 'bridge'/),
  );
});

test('a device pool takes any function a selector matches, tags merged; an absent listed device stays, not present', async () => {
  const pool = readDevicePoolXml(`<devicepool managed='yes'><name>p</name>
    <select vendor='8086' device='1572' tags='pf'/>
    <select pf='enp6s0f0#0-1' tags='fast'/>
    <address type='pci' domain='0' bus='6' slot='2' function='1' tags='migratable'/>
    <address type='pci' domain='0' bus='0x40' slot='0' function='0'/>
  </devicepool>`);
  const ms = devicePoolMembers(pool, await view());
  assert.deepEqual(
    ms.map((m) => [m.bdf, m.present, m.tags.join(',')]),
    [
      ['0000:06:00.0', true, 'pf'],
      ['0000:06:02.0', true, 'fast'],
      ['0000:06:02.1', true, 'fast,migratable'],
      ['0000:06:00.1', true, 'pf'],
      ['0000:40:00.0', false, ''],
    ],
  );
});
