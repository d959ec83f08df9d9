import { basename } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import type { MacAddress } from '../conf/mac.ts';
import { formatPciAddress, type PciAddress, parsePciAddress } from '../conf/pci-address.ts';
import type { Kernel, Sysfs } from './types.ts';

/**
 * Driver (re)binding as libvirt does it (virPCIDeviceBindToStub / virPCIDeviceUnbindFromStub,
 * libvirt's src/util/virpci.c; the kernel's Documentation/ABI/testing/sysfs-bus-pci):
 * driver_override, unbind, drivers_probe, then verify the driver link. Never new_id, which
 * affects every device with that ID. Shared by both backends: only Kernel writes and Sysfs reads.
 */
const dev = (a: string): string => `/sys/bus/pci/devices/${a}`;

export async function currentDriver(sysfs: Sysfs, address: PciAddress): Promise<string | undefined> {
  const link = await sysfs.readLink(`${dev(formatPciAddress(address))}/driver`);
  return link === undefined ? undefined : basename(link);
}

async function requireDevice(sysfs: Sysfs, name: string): Promise<void> {
  if (!(await sysfs.exists(dev(name)))) {
    throw new PassthruError('NO_DEVICE', `PCI device ${name} does not exist on this host`);
  }
}

/** Runs one write, re-throwing a failure with libvirt's sentence for that step. */
async function step(kernel: Kernel, path: string, value: string, message: string): Promise<void> {
  try {
    await kernel.writeSysfs(path, value);
  } catch (err) {
    const errno = err instanceof PassthruError ? err.errno : undefined;
    throw new PassthruError('HOST_FAILED', `${message}${errno === undefined ? '' : ` (${errno})`}`, {
      cause: err,
      ...(errno === undefined ? {} : { errno }),
    });
  }
}

function setOverride(kernel: Kernel, name: string, driver: string): Promise<void> {
  const message = `Failed to add driver '${driver}' to driver_override interface of PCI device '${name}'`;
  return step(kernel, `${dev(name)}/driver_override`, driver, message);
}

/** Unbinds the device from its driver (when it has one), then asks the kernel to probe it: the
 *  driver_override written before decides which driver takes it. */
async function unbindAndProbe(kernel: Kernel, name: string, driver: string | undefined): Promise<void> {
  if (driver !== undefined) {
    await step(kernel, `${dev(name)}/driver/unbind`, name, `Failed to unbind PCI device '${name}' from ${driver}`);
  }
  await step(kernel, '/sys/bus/pci/drivers_probe', name, `Failed to trigger a probe for PCI device '${name}'`);
}

export interface BindResult {
  /** false when the device was already on the stub: then release must not rebind it. */
  readonly changed: boolean;
  readonly previousDriver?: string;
}

export async function bindToStub(kernel: Kernel, address: PciAddress, stub = 'vfio-pci'): Promise<BindResult> {
  const name = formatPciAddress(address);
  const sysfs = kernel.sysfs;
  await requireDevice(sysfs, name);
  if (!(await sysfs.exists(`/sys/bus/pci/drivers/${stub}`))) {
    if (kernel.loadModule) await kernel.loadModule(stub);
    if (!(await sysfs.exists(`/sys/bus/pci/drivers/${stub}`))) {
      throw new PassthruError('HOST_FAILED', `Failed to load PCI driver module ${stub} for PCI device ${name}`, {
        hint: `load it with: modprobe ${stub}`,
      });
    }
  }
  const previous = await currentDriver(sysfs, address);
  if (previous === stub) return { changed: false, previousDriver: stub };
  await setOverride(kernel, name, stub);
  try {
    await unbindAndProbe(kernel, name, previous);
    const now = await currentDriver(sysfs, address);
    if (now !== stub) {
      throw new PassthruError(
        'HOST_FAILED',
        `PCI device ${name} did not bind to ${stub}: its driver is ${now ?? 'none'} after the probe`,
      );
    }
  } catch (err) {
    // Leave the device as it was: its own driver back, no override left behind.
    await rebindHostDriver(kernel, address).catch(() => undefined);
    throw err;
  }
  return previous === undefined ? { changed: true } : { changed: true, previousDriver: previous };
}

/** Gives the device back to its host driver: clear the override, unbind, probe, verify it is
 *  off the stub (a device without a host driver legitimately ends up unbound).
 *
 *  With `hostDriver` (bindToStub's previousDriver) the device goes back to exactly that driver,
 *  through a driver_override cleared afterwards: a plain probe cannot bind a VF of a PF whose
 *  sriov_drivers_autoprobe is 0 (pci_device_can_probe), so libvirt's way leaves such a VF
 *  driverless (seen in the VM lab). */
export async function rebindHostDriver(kernel: Kernel, address: PciAddress, hostDriver?: string): Promise<void> {
  const name = formatPciAddress(address);
  const sysfs = kernel.sysfs;
  await requireDevice(sysfs, name);
  if (hostDriver !== undefined && !isStub(hostDriver) && (await sysfs.exists(`/sys/bus/pci/drivers/${hostDriver}`))) {
    return rebindTo(kernel, address, hostDriver);
  }
  const before = await currentDriver(sysfs, address);
  await step(kernel, `${dev(name)}/driver_override`, '\n', `Failed to clear driver_override of PCI device '${name}'`);
  await unbindAndProbe(kernel, name, before);
  const after = await currentDriver(sysfs, address);
  if (after !== undefined && after === before && isStub(after)) {
    throw new PassthruError('HOST_FAILED', `PCI device ${name} is still bound to ${after} after the reprobe`);
  }
}

async function rebindTo(kernel: Kernel, address: PciAddress, driver: string): Promise<void> {
  const name = formatPciAddress(address);
  const before = await currentDriver(kernel.sysfs, address);
  if (before === driver) return;
  await setOverride(kernel, name, driver);
  try {
    await unbindAndProbe(kernel, name, before);
  } finally {
    // The override only steered this probe; left behind it would pin the device to the driver.
    await step(kernel, `${dev(name)}/driver_override`, '\n', `Failed to clear driver_override of PCI device '${name}'`);
  }
  const after = await currentDriver(kernel.sysfs, address);
  if (after !== driver) {
    throw new PassthruError(
      'HOST_FAILED',
      `PCI device ${name} did not go back to ${driver}: its driver is ${after ?? 'none'}`,
    );
  }
}

function isStub(driver: string): boolean {
  return driver === 'vfio-pci' || driver.endsWith('_vfio_pci') || driver === 'pci-stub';
}

export interface VfOf {
  readonly pf: PciAddress;
  readonly pfNetdev: string;
  readonly index: number;
}

/** libvirt's VIR_PF_PHYS_PORT_NAME_REGEX: an uplink port name, not a representor (pf0vf1). */
const UPLINK_PORT_NAME = /(p[0-9]+$)|(p[0-9]+s[0-9]+$)/;

/** Whether a PF netdev with this phys_port_name is an uplink port (no name: a plain NIC). */
export function isUplinkPort(portName: string | undefined): boolean {
  return portName === undefined || portName === '' || UPLINK_PORT_NAME.test(portName);
}

/**
 * The PF, VF index and PF netdev of a VF; undefined when the device is not a VF. The index
 * comes from the PF's virtfnN link whose target is this VF (never from glob order). The PF
 * netdev is chosen as libvirt's virPCIGetNetName does: the one sharing the VF netdev's
 * phys_port_id, skipping switchdev representors, else the first.
 */
export async function vfOf(sysfs: Sysfs, vfAddress: PciAddress): Promise<VfOf | undefined> {
  const name = formatPciAddress(vfAddress);
  const physfn = await sysfs.readLink(`${dev(name)}/physfn`);
  if (physfn === undefined) return undefined;
  const pfName = basename(physfn);
  let index: number | undefined;
  for (const entry of await sysfs.list(dev(pfName))) {
    const m = /^virtfn(\d+)$/.exec(entry);
    if (!m) continue;
    const target = await sysfs.readLink(`${dev(pfName)}/${entry}`);
    if (target !== undefined && basename(target) === name) {
      index = Number(m[1]);
      break;
    }
  }
  if (index === undefined) {
    throw new PassthruError('HOST_FAILED', `VF ${name} is not listed among the virtfn links of its PF ${pfName}`);
  }
  const pfNetdev = await pickPfNetdev(sysfs, pfName, name);
  if (pfNetdev === undefined) {
    throw new PassthruError('NO_DEVICE', `The PF device ${pfName} for VF ${name} has no network device name`, {
      hint: 'bind the PF to its network driver',
    });
  }
  return { pf: parsePciAddress(pfName), pfNetdev, index };
}

async function pickPfNetdev(sysfs: Sysfs, pf: string, vf: string): Promise<string | undefined> {
  const names = (await sysfs.list(`${dev(pf)}/net`)).sort();
  const [vfNetdev] = (await sysfs.list(`${dev(vf)}/net`)).sort();
  const vfPortId = vfNetdev === undefined ? undefined : await sysfs.read(`${dev(vf)}/net/${vfNetdev}/phys_port_id`);
  const ports: string[] = [];
  for (const n of names) {
    const portName = await sysfs.read(`${dev(pf)}/net/${n}/phys_port_name`);
    if (!isUplinkPort(portName)) continue;
    if (vfPortId !== undefined && vfPortId !== '') {
      if ((await sysfs.read(`${dev(pf)}/net/${n}/phys_port_id`)) === vfPortId) return n;
    }
    ports.push(n);
  }
  return ports[0];
}

export async function netdevMac(sysfs: Sysfs, ifname: string): Promise<MacAddress | undefined> {
  const mac = await sysfs.read(`/sys/class/net/${ifname}/address`);
  return mac === undefined ? undefined : (mac.toLowerCase() as MacAddress);
}
