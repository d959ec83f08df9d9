import { basename } from 'node:path';
import type { AuditTrail, HostChange } from './audit.ts';
import type { Kernel, Sysfs, VfConfig, VfSettings } from './types.ts';

/**
 * The Kernel with every write recorded in the audit trail: the daemon hands this, not the
 * backend, to everything above host/, so a write that reaches the host is audited whichever
 * code made it (sim and linux alike). Reads pass straight through. The object literal names
 * every member of Kernel, so a new write added to the interface does not compile until it is
 * given its entry here.
 */
export function auditedKernel(inner: Kernel, trail: AuditTrail): Kernel {
  const sysfs = inner.sysfs;
  const loadModule = inner.loadModule?.bind(inner);
  return {
    backend: inner.backend,
    sysfs,
    writeSysfs: (path, value) => trail.change(sysfsChange(sysfs, path, value), () => inner.writeSysfs(path, value)),
    vfTable: (pfNetdev) => inner.vfTable(pfNetdev),
    setVf: async (pfNetdev, vf, settings) => {
      const fields = vfFields(settings);
      const change: HostChange = {
        action: 'vf-attribute',
        detail: `PF ${pfNetdev} VF ${vf}`,
        read: async () =>
          pick(
            (await inner.vfTable(pfNetdev)).find((r) => r.vf === vf),
            fields,
          ),
        ...(await vfDevice(sysfs, pfNetdev, vf)),
      };
      return trail.change(change, () => inner.setVf(pfNetdev, vf, settings));
    },
    setVfPort: async (pfNetdev, vf, profile, request) => {
      // The port's status is not read around the request: on the switch a status read is itself
      // an exchange (an answer in progress moves on), so the trail records what was asked.
      const change: HostChange = {
        action: 'port-profile',
        detail: `PF ${pfNetdev} VF ${vf}`,
        after: { request, profile },
        ...(await vfDevice(sysfs, pfNetdev, vf)),
      };
      return trail.change(change, () => inner.setVfPort(pfNetdev, vf, profile, request));
    },
    vfPortStatus: (pfNetdev, vf) => inner.vfPortStatus(pfNetdev, vf),
    present: (address) => inner.present(address),
    ...(loadModule
      ? {
          loadModule: (name: string) =>
            trail.change({ action: 'load-module', detail: name, read: () => sysfs.exists(`/sys/module/${name}`) }, () =>
              loadModule(name),
            ),
        }
      : {}),
  };
}

const DEVICE_ATTR = /^\/sys\/bus\/pci\/devices\/([^/]+)\/(.+)$/;
const DRIVER_FILE = /^\/sys\/bus\/pci\/drivers\/([^/]+)\/(bind|unbind)$/;

/** What a sysfs write does, by its file (the kernel's Documentation/ABI/testing/sysfs-bus-pci). */
function sysfsChange(sysfs: Sysfs, path: string, value: string): HostChange {
  const v = value.trim();
  const driverOf = (bdf: string) => async () => {
    const link = await sysfs.readLink(`/sys/bus/pci/devices/${bdf}/driver`);
    return link === undefined ? null : basename(link);
  };
  const attribute = () => sysfs.read(path);
  if (path === '/sys/bus/pci/drivers_probe') return { action: 'probe', device: v, read: driverOf(v) };
  const drv = DRIVER_FILE.exec(path);
  if (drv?.[1] && drv[2]) {
    return { action: drv[2] === 'bind' ? 'bind' : 'unbind', device: v, detail: drv[1], read: driverOf(v) };
  }
  const dev = DEVICE_ATTR.exec(path);
  if (dev?.[1] && dev[2]) {
    const device = dev[1];
    switch (dev[2]) {
      case 'driver/unbind':
        return { action: 'unbind', device, read: driverOf(device) };
      case 'driver_override':
        return { action: 'driver-override', device, read: attribute };
      case 'sriov_numvfs':
        return { action: 'vf-count', device, read: attribute };
      case 'sriov_drivers_autoprobe':
        return { action: 'vf-autoprobe', device, read: attribute };
      case 'reset':
        return { action: 'reset', device };
      default:
        return { action: 'sysfs-write', device, detail: `${dev[2]}=${v}`, read: attribute };
    }
  }
  return { action: 'sysfs-write', detail: `${path}=${v}` };
}

/** The VF's PCI address from its PF's virtfnN link, so a VF change is found by device. */
async function vfDevice(sysfs: Sysfs, pfNetdev: string, vf: number): Promise<{ device?: string }> {
  const link = await sysfs.readLink(`/sys/class/net/${pfNetdev}/device/virtfn${vf}`).catch(() => undefined);
  return link === undefined ? {} : { device: basename(link) };
}

/** The VF table's fields that `settings` changes. */
function vfFields(s: VfSettings): (keyof VfConfig)[] {
  return [
    ...(s.mac === undefined ? [] : (['mac'] as const)),
    ...(s.vlan === undefined ? [] : (['vlan', 'qos', 'vlanProto'] as const)),
    ...(s.spoofchk === undefined ? [] : (['spoofchk'] as const)),
    ...(s.trust === undefined ? [] : (['trust'] as const)),
    ...(s.linkState === undefined ? [] : (['linkState'] as const)),
    ...(s.rate === undefined ? [] : (['minTxRate', 'maxTxRate'] as const)),
  ];
}

function pick(row: VfConfig | undefined, fields: readonly (keyof VfConfig)[]): Partial<VfConfig> | undefined {
  if (row === undefined) return undefined;
  return Object.fromEntries(fields.filter((f) => row[f] !== undefined).map((f) => [f, row[f]]));
}
