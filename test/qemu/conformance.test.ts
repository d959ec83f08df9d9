import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LIBVIRT } from '../conf/conformance/libvirt.ts';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import type { DomainDef } from '../../src/conf/domain/types.ts';
import { buildArgv } from '../../src/qemu/argv.ts';
import { formatDeviceKeyval } from '../../src/qemu/device-props.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';
import { vfioPresentations } from '../../src/qemu/native.ts';

/**
 * libvirt 9.0.0's own xml2argv data: for each case, the -device lines of the devices passthru
 * puts on the command line (vfio-pci, NICs, root ports) must equal libvirt's, byte for byte, in
 * the syntax the .args file uses. This checks the address planner and the property builder
 * together. The data is libvirt's tests/qemuxml2argvdata, kept in test/data/libvirt-9.0.0.
 */
const DIR = join(LIBVIRT, 'domain/xml2argv');
const DRIVERS = new Set(['vfio-pci', 'virtio-net-pci', 'e1000e', 'pcie-root-port', 'ioh3420']);

const CASES: readonly { name: string; devices: number }[] = [
  { name: 'hostdev-pci-address', devices: 1 },
  { name: 'hostdev-pci-address-device', devices: 1 },
  { name: 'hostdev-pci-multifunction', devices: 7 },
  { name: 'hostdev-vfio', devices: 1 },
  { name: 'hostdev-vfio-multidomain', devices: 1 },
  { name: 'net-hostdev', devices: 1 },
  { name: 'net-hostdev-bootorder', devices: 1 },
  { name: 'net-hostdev-multidomain', devices: 1 },
  { name: 'net-hostdev-vfio', devices: 1 },
  { name: 'net-virtio', devices: 1 },
  { name: 'net-virtio-teaming', devices: 4 },
  { name: 'pci-rom', devices: 4 },
  { name: 'pci-rom-disabled', devices: 1 },
  { name: 'pcie-root-port-model-generic', devices: 3 },
];
// Not compared: pcie-root-port{,-model-ioh3420} (made with an old capability set whose default
// root port model was ioh3420), q35-pcie-autoadd (its disks, filesystems, inputs and balloon take
// root ports first; passthru carries those devices but does not plan them).

/** The tokens of a libvirt .args file: continuation lines joined, single quotes removed. */
function argsTokens(text: string): string[] {
  const joined = text.replaceAll('\\\n', ' ');
  return [...joined.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

const driverOf = (device: string): string =>
  device.startsWith('{') ? (JSON.parse(device) as { driver: string }).driver : (device.split(',')[0] ?? '');

/** The command line a linux host builds: every host device as vfio-pci. */
function linuxArgv(live: DomainDef): string[] {
  return buildArgv(live, {
    accel: 'tcg',
    qmpSocket: '/q',
    consoleLog: '/c',
    pidfile: '/p',
    hostDevices: vfioPresentations(live),
  });
}

for (const c of CASES) {
  test(`libvirt xml2argv: ${c.name}`, () => {
    const argsFile = readdirSync(DIR).find(
      (f) => f.startsWith(`${c.name}.`) && f.endsWith('.args') && !f.includes('4.2.0'),
    );
    assert.ok(argsFile, `${c.name} has an .args file`);
    const theirs = argsTokens(readFileSync(join(DIR, argsFile), 'utf8'))
      .filter((_, i, all) => all[i - 1] === '-device')
      .filter((d) => DRIVERS.has(driverOf(d)));
    assert.equal(theirs.length, c.devices, 'devices compared');

    const live = prepareLiveDef(readDomainXml(readFileSync(join(DIR, `${c.name}.xml`), 'utf8'), `${c.name}.xml`));
    const argv = linuxArgv(live);
    const json = theirs.some((d) => d.startsWith('{'));
    const ours = argv
      .filter((_, i, all) => all[i - 1] === '-device')
      .filter((d) => DRIVERS.has(driverOf(d)))
      .map((d) => (json ? d : formatDeviceKeyval(JSON.parse(d) as Record<string, string | number | boolean>)));
    assert.deepEqual(ours, theirs);
  });
}

/** What libvirt writes back (xml2xml-out) carries the addresses its QEMU driver gave, among them
 *  the chipset's own controllers (PIIX3 IDE/USB, ICH9 SATA): such a dumped definition must start. */
test('libvirt-dumped definitions plan and build a command line', () => {
  const outDir = join(DIR, '../xml2xml-out');
  let built = 0;
  for (const f of readdirSync(outDir).filter((x) => x.endsWith('.xml'))) {
    const def = readDomainXml(readFileSync(join(outDir, f), 'utf8'), f);
    // An interface of type network gets its VF from the daemon first (without one it has no QEMU
    // backend); pcie-root-port-nohotplug has a PCIe switch, which passthru does not build.
    if (def.devices.interfaces.some((i) => i.type === 'network') || f.startsWith('pcie-root-port-nohotplug')) continue;
    const live = prepareLiveDef(def);
    const argv = linuxArgv(live);
    assert.ok(argv.includes('-device'), f);
    built++;
  }
  assert.ok(built >= 13, `only ${built} built`);
});
