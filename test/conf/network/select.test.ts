import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { readNetworkXml } from '../../../src/conf/network/read.ts';
import { type SelectableDevice, selectDevices, selectorMatches } from '../../../src/conf/network/select.ts';

const vf = (pf: string, i: number, numa = 0): SelectableDevice => ({
  address: { domain: 0, bus: pf === 'p0' ? 6 : 7, slot: 2 + (i >> 3), function: i & 7 },
  vendor: 0x8086,
  device: 0x154c,
  driver: 'iavf',
  pf,
  vfIndex: i,
  numaNode: numa,
});

const HOST = [
  ...Array.from({ length: 8 }, (_, i) => vf('p0', i)),
  ...Array.from({ length: 8 }, (_, i) => vf('p1', i, 1)),
];

test("selectors like the device plugin's: PF with VF ranges, NUMA, vendor/device/driver", () => {
  const net = readNetworkXml(`<network><name>n</name><forward mode='hostdev' managed='yes'>
<select pf='p0#0,2-3'/><select vendor='8086' device='154c' numa='1' driver='iavf'/></forward></network>`);
  const picked = selectDevices(net.forward?.selectors ?? [], HOST);
  assert.deepEqual(
    picked.map((d) => `${d.pf ?? ''}#${d.vfIndex ?? ''}`),
    ['p0#0', 'p0#2', 'p0#3', ...Array.from({ length: 8 }, (_, i) => `p1#${i}`)],
  );
  assert.equal(selectorMatches({ driver: 'vfio-pci' }, vf('p0', 0)), false);
  const noIndex: SelectableDevice = { address: vf('p0', 1).address, vendor: 0x8086, device: 0x154c, pf: 'p0' };
  assert.equal(
    selectorMatches({ pf: 'p0', vfs: [[1, 1]] }, noIndex),
    false,
    'a VF range never matches a device without a VF index',
  );
  assert.equal(selectorMatches({ pf: 'p0', vfs: [[1, 1]] }, vf('p0', 1)), true);
});

test('selection is the union of the selectors, each device once, in host order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ pf: fc.constantFrom('p0', 'p1'), lo: fc.nat(7), len: fc.nat(7) }), {
        minLength: 1,
        maxLength: 4,
      }),
      (sels) => {
        const selectors = sels.map((s) => ({ pf: s.pf, vfs: [[s.lo, s.lo + s.len] as const] }));
        const picked = selectDevices(selectors, HOST);
        const expected = HOST.filter((d) =>
          sels.some((s) => s.pf === d.pf && (d.vfIndex ?? -1) >= s.lo && (d.vfIndex ?? -1) <= s.lo + s.len),
        );
        assert.deepEqual(picked, expected);
      },
    ),
  );
});
