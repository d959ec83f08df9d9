import type { CharDevDef, ControllerDef, DiskDef, DomainDef } from '../conf/domain/types.ts';
import { diskIndex } from '../conf/domain/disk.ts';
import { isHostdevInterface } from '../conf/domain/hostdevs.ts';
import { standbyOf, withStandby } from '../conf/domain/hybrid.ts';
import { defaultPciControllerAlias } from './device-props.ts';

/**
 * Device aliases as libvirt gives them at start (qemuAssignDeviceAliases). The alias is the QEMU
 * device id, so it is what QMP events and hot-unplug name. Aliases already present (the user's
 * `ua-` ones, or those of a live definition) are kept; a new one takes the highest index in use
 * for its prefix plus one, so re-running this on a live definition changes nothing.
 */
export function assignAliases(def: DomainDef): DomainDef {
  const counters = new Counters(def);
  const interfaces = def.devices.interfaces.map((iface) => {
    const named =
      iface.alias !== undefined
        ? iface
        : { ...iface, alias: counters.next(isHostdevInterface(iface) ? 'hostdev' : 'net') };
    // A hybrid's virtio standby is a NIC of its own: netN, after its VF's hostdevN.
    const standby = standbyOf(named);
    return standby === undefined || standby.alias !== undefined
      ? named
      : withStandby(named, { ...standby, alias: counters.next('net') });
  });
  const hostdevs = def.devices.hostdevs.map((h) =>
    h.alias !== undefined ? h : { ...h, alias: counters.next('hostdev') },
  );
  const controllers = def.devices.controllers.map((c) =>
    c.alias !== undefined ? c : { ...c, alias: controllerAlias(c) },
  );
  const serials = def.devices.serials.map((s, i) =>
    s.alias !== undefined ? s : { ...s, alias: `serial${s.targetPort ?? i}` },
  );
  const consoles = def.devices.consoles.map((c, i) =>
    c.alias !== undefined ? c : { ...c, alias: consoleAlias(c, i, serials) },
  );
  const disks = def.devices.disks?.map((d) =>
    'xml' in d || d.alias !== undefined ? d : { ...d, alias: diskAlias(d) },
  );
  return {
    ...def,
    devices: { ...def.devices, controllers, interfaces, hostdevs, serials, consoles, ...(disks ? { disks } : {}) },
  };
}

class Counters {
  private readonly max = new Map<string, number>();

  constructor(def: DomainDef) {
    const all = [...def.devices.interfaces, ...def.devices.hostdevs, ...def.devices.interfaces.map(standbyOf)];
    for (const d of all) if (d?.alias !== undefined) this.note(d.alias);
  }

  private note(alias: string): void {
    const m = /^(net|hostdev)(\d+)$/.exec(alias);
    if (!m?.[1] || !m[2]) return;
    this.max.set(m[1], Math.max(this.max.get(m[1]) ?? -1, Number(m[2])));
  }

  next(prefix: 'net' | 'hostdev'): string {
    const n = (this.max.get(prefix) ?? -1) + 1;
    this.max.set(prefix, n);
    return `${prefix}${n}`;
  }
}

function controllerAlias(c: ControllerDef): string {
  switch (c.type) {
    case 'pci':
      return defaultPciControllerAlias(c);
    case 'usb':
      return c.index === 0 ? 'usb' : `usb${c.index}`;
    case 'ide':
      return c.index === 0 ? 'ide' : `ide${c.index}`;
    case 'sata':
    case 'scsi':
    case 'virtio-serial':
      return `${c.type}${c.index}`;
  }
}

/** A console on a serial target is the same device as that serial port: libvirt shows the
 *  serial's alias on it. Only other consoles (virtio) get consoleN. */
function consoleAlias(c: CharDevDef, i: number, serials: readonly CharDevDef[]): string {
  if (c.targetType === undefined || c.targetType === 'serial') {
    const port = c.targetPort ?? 0;
    const serial = serials.find((s, j) => (s.targetPort ?? j) === port);
    if (serial?.alias !== undefined) return serial.alias;
    return `serial${port}`;
  }
  return `console${i}`;
}

/** libvirt's qemuAssignDeviceDiskAlias: virtio-diskN by the name's index, else the bus name and
 *  the drive address (SCSI with its target too). */
function diskAlias(d: DiskDef): string {
  const a = d.guestAddress?.type === 'drive' ? d.guestAddress : undefined;
  const [c, b, t, u] = [a?.controller ?? 0, a?.bus ?? 0, a?.target ?? 0, a?.unit ?? 0];
  switch (d.target.bus) {
    case 'virtio':
      return `virtio-disk${diskIndex(d.target.dev)}`;
    case 'scsi':
      return `scsi${c}-${b}-${t}-${u}`;
    case 'ide':
    case 'sata':
      return `${d.target.bus}${c}-${b}-${u}`;
  }
}
