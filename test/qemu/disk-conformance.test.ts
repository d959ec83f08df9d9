import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readDomainXml } from '../../src/conf/domain/read.ts';
import { buildArgv } from '../../src/qemu/argv.ts';
import { formatDeviceKeyval } from '../../src/qemu/device-props.ts';
import { prepareLiveDef } from '../../src/qemu/live-def.ts';

/**
 * libvirt's xml2argv cases for disks (test/data/libvirt-qemuxml2argv, see its ORIGIN.md): the
 * -blockdev nodes of every disk passthru runs must equal libvirt's byte for byte (key order,
 * node numbering, backing links), and so must the disk -device properties named per case.
 * Disks passthru carries but does not run (network sources, usb, sd) are left out of both sides.
 */
const DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../data/libvirt-qemuxml2argv');

const CASES: readonly { name: string; blockdevs: number; devices: readonly string[] }[] = [
  // scsi-hd left out: libvirt's default SCSI controller on i440fx is lsi, passthru's virtio-scsi.
  { name: 'disk-cache', blockdevs: 8, devices: ['ide-hd', 'ide-hd', 'virtio-blk-pci'] },
  { name: 'disk-discard', blockdevs: 4, devices: ['virtio-blk-pci', 'ide-cd'] },
  { name: 'disk-serial', blockdevs: 4, devices: ['ide-hd', 'ide-hd'] },
  // The block qcow2 without a chain and the 12-image file chain; the other disks are network.
  { name: 'disk-backing-chains-noindex', blockdevs: 26, devices: [] },
];

function argsTokens(text: string): string[] {
  const joined = text.replaceAll('\\\n', ' ');
  return [...joined.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
}

const nodeName = (blockdev: string): string => (JSON.parse(blockdev) as { 'node-name': string })['node-name'];
const driverOf = (device: string): string =>
  device.startsWith('{') ? (JSON.parse(device) as { driver: string }).driver : (device.split(',')[0] ?? '');
const after = (tokens: readonly string[], opt: string): string[] => tokens.filter((_, i) => tokens[i - 1] === opt);

for (const c of CASES) {
  test(`libvirt xml2argv disks: ${c.name}`, () => {
    const theirs = argsTokens(readFileSync(join(DIR, `${c.name}.x86_64-latest.args`), 'utf8'));
    const def = readDomainXml(readFileSync(join(DIR, `${c.name}.xml`), 'utf8'), `${c.name}.xml`);
    const ours = buildArgv(prepareLiveDef(def), {
      accel: 'tcg',
      qmpSocket: '/q',
      consoleLog: '/c',
      pidfile: '/p',
      hostDevices: new Map(),
    });

    const ourNodes = after(ours, '-blockdev');
    assert.equal(ourNodes.length, c.blockdevs, 'blockdev nodes built');
    const names = new Set(ourNodes.map(nodeName));
    assert.deepEqual(
      ourNodes,
      after(theirs, '-blockdev').filter((b) => names.has(nodeName(b))),
    );

    const wanted = new Set(c.devices);
    const theirDevices = after(theirs, '-device').filter((d) => wanted.has(driverOf(d)));
    assert.deepEqual(theirDevices.map(driverOf), c.devices, 'devices compared');
    const json = theirDevices.some((d) => d.startsWith('{'));
    const ourDevices = after(ours, '-device')
      .filter((d) => wanted.has(driverOf(d)))
      .map((d) => (json ? d : formatDeviceKeyval(JSON.parse(d) as Record<string, string | number | boolean>)));
    assert.deepEqual(ourDevices, theirDevices);
  });
}
