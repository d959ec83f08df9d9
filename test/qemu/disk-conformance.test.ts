import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDeviceKeyval } from '../../src/qemu/device-props.ts';
import { libvirtArgs, libvirtCaseDef, ourArgs, valuesOf as after } from './helpers/libvirt-args.ts';

/**
 * libvirt's xml2argv cases for disks (test/data/libvirt-qemuxml2argv, see its ORIGIN.md): the
 * -blockdev nodes of every disk passthru runs must equal libvirt's byte for byte (key order,
 * node numbering, backing links), and so must the disk -device properties named per case.
 * Disks passthru carries but does not run (network sources, usb, sd) are left out of both sides.
 */
const CASES: readonly { name: string; blockdevs: number; devices: readonly string[] }[] = [
  // scsi-hd left out: libvirt's default SCSI controller on i440fx is lsi, passthru's virtio-scsi.
  { name: 'disk-cache', blockdevs: 8, devices: ['ide-hd', 'ide-hd', 'virtio-blk-pci'] },
  { name: 'disk-discard', blockdevs: 4, devices: ['virtio-blk-pci', 'ide-cd'] },
  { name: 'disk-serial', blockdevs: 4, devices: ['ide-hd', 'ide-hd'] },
  // The block qcow2 without a chain and the 12-image file chain; the other disks are network.
  { name: 'disk-backing-chains-noindex', blockdevs: 26, devices: [] },
];

const nodeName = (blockdev: string): string => (JSON.parse(blockdev) as { 'node-name': string })['node-name'];
const driverOf = (device: string): string =>
  device.startsWith('{') ? (JSON.parse(device) as { driver: string }).driver : (device.split(',')[0] ?? '');

for (const c of CASES) {
  test(`libvirt xml2argv disks: ${c.name}`, () => {
    const theirs = libvirtArgs(c.name);
    const ours = ourArgs(libvirtCaseDef(c.name));

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
