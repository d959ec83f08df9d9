import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PassthruError } from '../../src/conf/error.ts';
import { parseMac, parseUnicastMac } from '../../src/conf/mac.ts';
import { formatPciAddress, parsePciAddress, pciNodeDeviceName } from '../../src/conf/pci-address.ts';
import { parseUuid } from '../../src/conf/uuid.ts';
import { parseVlanId } from '../../src/conf/vlan.ts';

const rejects = (fn: () => unknown, code = 'INVALID_ARG'): void => {
  assert.throws(fn, (e: unknown) => e instanceof PassthruError && e.code === code);
};

test('PCI addresses: accepted forms and canonical format', () => {
  assert.deepEqual(parsePciAddress('0000:06:10.2'), { domain: 0, bus: 6, slot: 0x10, function: 2 });
  assert.equal(formatPciAddress(parsePciAddress('06:10.2')), '0000:06:10.2');
  assert.equal(formatPciAddress(parsePciAddress('pci_0001_3b_02_1')), '0001:3b:02.1');
  assert.equal(pciNodeDeviceName(parsePciAddress('0000:06:10.2')), 'pci_0000_06_10_2');
});

test('PCI addresses: out of range or malformed are typed errors naming the text', () => {
  for (const bad of ['', '0000:06:10', '0000:06:20.0', '0000:06:10.8', '0000:100:00.0', 'zz:00.0', '0000:06:10.2 ']) {
    rejects(() => parsePciAddress(bad));
  }
  assert.throws(() => parsePciAddress('0000:06:20.0'), /'0000:06:20.0'.*slot/);
});

test('PCI addresses: format/parse round trip for every valid address', () => {
  const addr = fc.record(
    {
      domain: fc.integer({ min: 0, max: 0xffff }),
      bus: fc.integer({ min: 0, max: 0xff }),
      slot: fc.integer({ min: 0, max: 0x1f }),
      function: fc.integer({ min: 0, max: 7 }),
    },
    { noNullPrototype: true },
  );
  fc.assert(fc.property(addr, (a) => assert.deepEqual(parsePciAddress(formatPciAddress(a)), a)));
});

test('MAC addresses', () => {
  assert.equal(parseMac('52:54:00:AB:cd:01'), '52:54:00:ab:cd:01');
  for (const bad of ['52:54:00:ab:cd', '52-54-00-ab-cd-01', '52:54:00:ab:cd:0g', '']) rejects(() => parseMac(bad));
  rejects(() => parseUnicastMac('01:00:5e:00:00:01'));
});

test('VLAN ids: 0..4095', () => {
  assert.equal(parseVlanId('0'), 0);
  assert.equal(parseVlanId('4095'), 4095);
  for (const bad of ['4096', '-1', '1.5', 'x', '']) rejects(() => parseVlanId(bad));
});

test('UUIDs', () => {
  assert.equal(parseUuid('C7A5FDBDEDAF9455926AD65C16DB1809'), 'c7a5fdbd-edaf-9455-926a-d65c16db1809');
  for (const bad of ['c7a5fdbd-edaf-9455-926a-d65c16db180', 'not-a-uuid']) rejects(() => parseUuid(bad));
});
