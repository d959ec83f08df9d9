import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import { readPciDevice } from './inventory.ts';
import type { Kernel } from './types.ts';

export interface VfCountOptions {
  /** Who holds a VF now (a domain name), or undefined when it is free. */
  readonly holder?: (vf: PciAddress) => string | undefined;
  /** sriov_drivers_autoprobe for the new VFs: false keeps them driverless (to bind vfio-pci
   *  next); absent leaves the PF's setting alone. */
  readonly autoprobe?: boolean;
  /** How long to wait for the VFs and their drivers to appear. */
  readonly timeoutMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface VfCountResult {
  readonly before: number;
  /** What the PF has now: the driver may enable fewer than asked ("only %d enabled"). */
  readonly after: number;
  readonly vfs: readonly PciAddress[];
  /** false when the deadline passed before every VF had appeared with its driver. */
  readonly settled: boolean;
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * nodedev-sriov PF --numvfs N, safely (PRODUCT.md A): refused while any VF is held; a change
 * between two non-zero counts goes through 0 (the kernel answers EBUSY otherwise); autoprobe is
 * set while the PF has no VFs ("it will not affect VFs already probed"); then it waits for the
 * VFs to appear and, with autoprobe, for their drivers.
 */
export async function setVfCount(
  kernel: Kernel,
  pf: PciAddress,
  n: number,
  opts: VfCountOptions = {},
): Promise<VfCountResult> {
  const name = formatPciAddress(pf);
  const dev = await readPciDevice(kernel.sysfs, pf);
  if (!dev.sriov)
    throw new PassthruError('INVALID_ARG', `PCI device ${name} is not an SR-IOV PF: it has no sriov_totalvfs`);
  if (!Number.isInteger(n) || n < 0 || n > dev.sriov.totalVfs) {
    throw new PassthruError('INVALID_ARG', `PF ${name} supports 0 to ${dev.sriov.totalVfs} VFs, not ${n}`);
  }
  const before = dev.sriov.numVfs;
  const path = `/sys/bus/pci/devices/${name}`;
  if (before !== n || (opts.autoprobe !== undefined && opts.autoprobe !== dev.sriov.autoprobe)) {
    for (const vf of dev.sriov.vfs) {
      const holder = opts.holder?.(vf);
      if (holder !== undefined) {
        throw new PassthruError(
          'DEVICE_IN_USE',
          `cannot change the VF count of PF ${name}: VF ${formatPciAddress(vf)} is in use by domain ${holder}`,
        );
      }
    }
    if (before !== 0) await kernel.writeSysfs(`${path}/sriov_numvfs`, '0');
    if (opts.autoprobe !== undefined)
      await kernel.writeSysfs(`${path}/sriov_drivers_autoprobe`, opts.autoprobe ? '1' : '0');
    if (n !== 0) await kernel.writeSysfs(`${path}/sriov_numvfs`, String(n));
  }
  const settled = await waitForVfs(kernel, name, n, opts);
  const now = await readPciDevice(kernel.sysfs, pf);
  return { before, after: now.sriov?.numVfs ?? 0, vfs: now.sriov?.vfs ?? [], settled };
}

async function waitForVfs(kernel: Kernel, pf: string, n: number, opts: VfCountOptions): Promise<boolean> {
  const sleep = opts.sleep ?? realSleep;
  const deadline = opts.timeoutMs ?? 10_000;
  for (let waited = 0; ; waited += 100) {
    if (await vfsReady(kernel, pf, n)) return true;
    if (waited >= deadline) return false;
    await sleep(100);
  }
}

async function vfsReady(kernel: Kernel, pf: string, n: number): Promise<boolean> {
  const s = kernel.sysfs;
  const dir = `/sys/bus/pci/devices/${pf}`;
  if (Number(await s.read(`${dir}/sriov_numvfs`)) !== n) return false;
  const autoprobe = (await s.read(`${dir}/sriov_drivers_autoprobe`)) !== '0';
  for (let i = 0; i < n; i++) {
    const link = await s.readLink(`${dir}/virtfn${i}`);
    if (link === undefined) return false;
    if (autoprobe && !(await s.exists(`${dir}/virtfn${i}/driver`))) return false;
  }
  return true;
}
