import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parsePciConfig } from '../../src/host/pci-config.ts';
import { buildConfigSpace } from '../../src/host/sim/config-space.ts';

const DATA = join(import.meta.dirname, '../data/libvirt-9.0.0/pci-config');

/** libvirt's virpcimock config images; the expectations were checked against
 *  `lspci -vv -F` of the same bytes (PM NoSoftRst, FLReset, LnkCap/LnkSta, capability order). */
const CASES: readonly [string, Record<string, unknown>][] = [
  [
    '0000-00-01.0',
    {
      vendor: 0x8086,
      device: 0x4238,
      header: 'endpoint',
      mf: false,
      caps: [0x01, 0x05, 0x10],
      flr: true,
      pm: true,
      af: false,
      pcie: 'endpoint',
      cap: { speed: 2.5, width: 1, port: 0 },
    },
  ],
  [
    '0000-00-02.0',
    {
      vendor: 0x8086,
      device: 0x0046,
      header: 'endpoint',
      mf: false,
      caps: [0x05, 0x01, 0x13],
      flr: undefined,
      pm: true,
      af: true,
      pcie: undefined,
    },
  ],
  [
    '0000-00-03.0',
    {
      vendor: 0x1180,
      device: 0xe822,
      header: 'endpoint',
      mf: true,
      caps: [0x05, 0x01, 0x10],
      flr: false,
      pm: true,
      af: false,
      pcie: 'endpoint',
      cap: { speed: 2.5, width: 1, port: 1 },
    },
  ],
  [
    '0000-01-00.0',
    {
      vendor: 0x1cc1,
      device: 0x8201,
      header: 'endpoint',
      mf: false,
      caps: [0x01, 0x05, 0x10, 0x11],
      flr: true,
      pm: false,
      af: false,
      pcie: 'endpoint',
      cap: { speed: 8, width: 4, port: 0 },
    },
  ],
  [
    '0000-06-12.0',
    {
      vendor: 0x1033,
      device: 0x0035,
      header: 'endpoint',
      mf: false,
      caps: [0x01],
      flr: undefined,
      pm: true,
      af: false,
      pcie: undefined,
    },
  ],
  [
    '0001-00-00.0',
    {
      vendor: 0x1014,
      device: 0x03b9,
      header: 'pci-bridge',
      mf: false,
      caps: [0x01, 0x10],
      flr: false,
      pm: true,
      af: false,
      pcie: 'root-port',
      cap: { speed: 5, width: 8, port: 0 },
      sta: { speed: 2.5, width: 4 },
    },
  ],
  [
    '0001-01-00.1',
    {
      vendor: 0x8086,
      device: 0x105e,
      header: 'endpoint',
      mf: true,
      caps: [0x01, 0x05, 0x10],
      flr: false,
      pm: true,
      af: false,
      pcie: 'endpoint',
    },
  ],
  [
    '0005-80-00.0',
    {
      vendor: 0x10b5,
      device: 0x8112,
      header: 'pci-bridge',
      mf: false,
      caps: [0x01, 0x05, 0x10],
      flr: false,
      pm: true,
      af: false,
      pcie: 'pcie-to-pci-bridge',
    },
  ],
];

for (const [name, want] of CASES) {
  test(`config space: ${name}`, () => {
    const c = parsePciConfig(readFileSync(join(DATA, `${name}.config`)));
    assert.ok(c);
    assert.equal(c.vendor, want['vendor']);
    assert.equal(c.device, want['device']);
    assert.equal(c.headerType, want['header']);
    assert.equal(c.multifunction, want['mf']);
    assert.deepEqual(c.capabilities, want['caps']);
    assert.equal(c.pcie?.flr, want['flr']);
    assert.equal(c.pmReset, want['pm']);
    assert.equal(c.afFlr, want['af']);
    assert.equal(c.pcie?.type, want['pcie']);
    if (want['cap'] !== undefined) assert.deepEqual(c.pcie?.linkCap, want['cap']);
    if (want['sta'] !== undefined) assert.deepEqual(c.pcie?.linkSta, want['sta']);
  });
}

test('config space: the 256-byte images have no extended capabilities; 4 KiB ones do', () => {
  const short = parsePciConfig(readFileSync(join(DATA, '0000-06-12.1.config')));
  assert.deepEqual(short?.extendedCapabilities, []);
  const long = parsePciConfig(readFileSync(join(DATA, '0000-01-00.0.config')));
  assert.deepEqual(long?.extendedCapabilities, [0x01, 0x19, 0x18, 0x1e]);
  assert.equal(parsePciConfig(Buffer.alloc(32)), undefined);
});

test('config space: a looping capability list ends instead of hanging', () => {
  const buf = Buffer.alloc(256);
  buf.writeUInt16LE(0x0010, 0x06);
  buf.writeUInt8(0x40, 0x34);
  buf.writeUInt8(0x01, 0x40);
  buf.writeUInt8(0x40, 0x41); // points at itself
  const c = parsePciConfig(buf);
  assert.ok(c && c.capabilities.length <= 48);
});

test('config space: what the sim writes parses back to what it was asked for', () => {
  fc.assert(
    fc.property(
      fc.record({
        vendor: fc.integer({ min: 0, max: 0xffff }),
        device: fc.integer({ min: 0, max: 0xffff }),
        class: fc.integer({ min: 0, max: 0xffffff }),
        multifunction: fc.boolean(),
        pcieType: fc.constantFrom(
          'endpoint' as const,
          'root-port' as const,
          'switch-upstream' as const,
          'switch-downstream' as const,
        ),
        flr: fc.boolean(),
        acs: fc.boolean(),
        link: fc.record({ speed: fc.constantFrom(2.5, 5, 8, 16, 32), width: fc.constantFrom(1, 2, 4, 8, 16) }),
        sriov: fc.option(
          fc.record({
            totalVfs: fc.integer({ min: 1, max: 256 }),
            numVfs: fc.integer({ min: 0, max: 256 }),
            offset: fc.integer({ min: 1, max: 200 }),
            stride: fc.integer({ min: 1, max: 4 }),
            vfDevice: fc.integer({ min: 0, max: 0xffff }),
          }),
          { nil: undefined },
        ),
      }),
      (spec) => {
        const bridge = spec.pcieType === 'endpoint' ? undefined : { primary: 0, secondary: 1, subordinate: 2 };
        const { sriov, ...rest } = spec;
        const c = parsePciConfig(
          buildConfigSpace({ ...rest, ...(bridge ? { bridge } : {}), ...(sriov ? { sriov } : {}) }),
        );
        assert.ok(c);
        assert.equal(c.vendor, spec.vendor);
        assert.equal(c.device, spec.device);
        assert.equal(c.class, spec.class);
        assert.equal(c.multifunction, spec.multifunction);
        assert.equal(c.headerType, bridge ? 'pci-bridge' : 'endpoint');
        assert.equal(c.pcie?.type, spec.pcieType);
        assert.equal(c.pcie?.flr, spec.flr);
        assert.deepEqual(c.pcie?.linkCap, { ...spec.link, port: 0 });
        assert.equal(c.acs !== undefined, spec.acs);
        assert.equal(c.sriov?.totalVfs, spec.sriov?.totalVfs);
        assert.equal(c.sriov?.offset, spec.sriov?.offset);
        assert.equal(c.sriov?.vfDevice, spec.sriov?.vfDevice);
      },
    ),
  );
});
