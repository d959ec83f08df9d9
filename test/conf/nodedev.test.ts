import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PassthruError } from '../../src/conf/error.ts';
import { formatNodeDevice } from '../../src/conf/nodedev/format.ts';
import { parseNodeDevice } from '../../src/conf/nodedev/parse.ts';

const DATA = join(import.meta.dirname, '../data/libvirt-9.0.0/nodedev');

/** libvirt's nodedevxml2xml cases: in -> out, byte for byte. Cases with capabilities passthru
 *  does not model must be refused as CONFIG_UNSUPPORTED, never half written. */
const UNSUPPORTED = new Set([
  'pci_0000_02_10_7_mdev_types.xml',
  'pci_0000_42_00_0_vpd.xml',
  'pci_8086_27c5_scsi_host.xml',
  'pci_8086_27c5_scsi_host_0.xml',
  'pci_8086_27c5_scsi_host_0_unique_id.xml',
  'pci_8086_27c5_scsi_host_scsi_device_lun0.xml',
  'pci_8086_27c5_scsi_host_scsi_host.xml',
]);

const cases = readdirSync(join(DATA, 'in'))
  .filter((f) => f.endsWith('.xml'))
  .sort();

for (const file of cases) {
  test(`nodedev conformance: ${file}`, () => {
    const input = readFileSync(join(DATA, 'in', file), 'utf8');
    if (UNSUPPORTED.has(file)) {
      assert.throws(
        () => parseNodeDevice(input),
        (e: unknown) => e instanceof PassthruError && e.code === 'CONFIG_UNSUPPORTED',
      );
      return;
    }
    let expected: string;
    try {
      expected = readFileSync(join(DATA, 'out', file), 'utf8');
    } catch {
      // libvirt has no output for this one (it is an input-only case): it must still parse.
      parseNodeDevice(input);
      return;
    }
    assert.equal(formatNodeDevice(parseNodeDevice(input)), expected);
  });
}

test('nodedev parse: errors name the element and line', () => {
  assert.throws(
    () =>
      parseNodeDevice(
        "<device>\n  <name>x</name>\n  <capability type='pci'><domain>0</domain></capability>\n</device>",
      ),
    (e: unknown) =>
      e instanceof PassthruError &&
      e.code === 'XML_INVALID' &&
      e.line === 3 &&
      e.message.startsWith('<capability> at line 3: missing <bus>'),
  );
  assert.throws(
    () => parseNodeDevice('<device><name>x</name>\n<bogus/></device>'),
    (e: unknown) =>
      e instanceof PassthruError && e.code === 'XML_INVALID' && e.line === 2 && e.message.includes('<bogus> at line 2'),
  );
  assert.throws(
    () => parseNodeDevice("<device>\n<name>x</name>\n<parent id='1'>computer</parent></device>"),
    (e: unknown) =>
      e instanceof PassthruError && e.line === 3 && e.message.includes("<parent> at line 3: attribute 'id'"),
  );
});
