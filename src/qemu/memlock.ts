import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DomainDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';
import { iommuOf } from './iommu.ts';

const GiB = 1024 ** 3;

/**
 * The locked-memory limit a QEMU with VFIO devices needs (libvirt's qemuDomainGetMemLockLimitBytes
 * on x86): VFIO pins all guest RAM for DMA, plus 1 GiB for QEMU's own pinned buffers; with a
 * vIOMMU each device has its own address space, so each may pin all of it. Undefined: no VFIO
 * device, the default limit stands.
 */
export function memlockBytes(def: DomainDef, vfioDevices: number): number | undefined {
  if (vfioDevices === 0) return undefined;
  const each = def.memoryKiB * 1024 + GiB;
  return iommuOf(def) ? each * vfioDevices : each;
}

/** Raises a running QEMU's limit (before a hot-plug adds a VFIO device). */
export async function setMemlock(pid: number, bytes: number): Promise<void> {
  try {
    await promisify(execFile)('prlimit', ['--pid', String(pid), `--memlock=${bytes}:${bytes}`]);
  } catch (err) {
    throw new PassthruError(
      'HOST_FAILED',
      `cannot set the locked-memory limit of QEMU (pid ${pid}) to ${bytes} bytes: ${(err as Error).message}`,
    );
  }
}
