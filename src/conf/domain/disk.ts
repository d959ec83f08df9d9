import type { Devices, DiskDef, GuestAddress, OtherDeviceDef } from './types.ts';

/** The disks passthru models (disk-parse.ts), in document order. */
export function typedDisks(d: Devices): DiskDef[] {
  return (d.disks ?? []).filter((k): k is DiskDef => !('xml' in k));
}

/** The disks carried as XML (what passthru does not run), in document order. */
export function carriedDisks(d: Devices): OtherDeviceDef[] {
  return (d.disks ?? []).filter((k): k is OtherDeviceDef => 'xml' in k);
}

/** A disk name's index: vda -> 0, sdb -> 1, sdaa -> 26 (libvirt's virDiskNameToIndex). */
export function diskIndex(dev: string): number {
  const letters = dev.replace(/^(vd|sd|hd)/, '');
  let n = 0;
  for (const ch of letters) n = n * 26 + (ch.charCodeAt(0) - 96);
  return n - 1;
}

/**
 * The drive address libvirt gives an IDE, SATA or SCSI disk without one, from its name
 * (virDomainDiskDefAssignAddress): two units on each of two buses per IDE controller, six ports
 * per AHCI controller, seven units per SCSI controller.
 */
export function defaultDriveAddress(disk: DiskDef): GuestAddress | undefined {
  if (disk.guestAddress !== undefined || disk.target.bus === 'virtio') return disk.guestAddress;
  const i = diskIndex(disk.target.dev);
  switch (disk.target.bus) {
    case 'ide':
      return { type: 'drive', controller: Math.floor(i / 4), bus: Math.floor((i % 4) / 2), target: 0, unit: i % 2 };
    case 'sata':
      return { type: 'drive', controller: Math.floor(i / 6), bus: 0, target: 0, unit: i % 6 };
    case 'scsi':
      return { type: 'drive', controller: Math.floor(i / 7), bus: 0, target: 0, unit: i % 7 };
  }
}
