import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * An emulator for tests that need many running domains but no guest OS: the real QEMU, with
 * its real QMP, devices and process, given a firmware image that is nothing but HLT
 * instructions. The vCPU halts at the reset vector with interrupts off and costs no CPU, so
 * dozens of domains can run on two cores. Written into `dir`; returns the wrapper's path, to be
 * used as the domain's `<emulator>`.
 */
export async function haltedQemu(dir: string, qemu: string): Promise<string> {
  const firmware = join(dir, 'halt.bin');
  // 64 KiB, mapped below 4 GiB; the reset vector (its last 16 bytes) is an HLT like the rest.
  await writeFile(firmware, Buffer.alloc(64 * 1024, 0xf4));
  const wrapper = join(dir, 'qemu-halted');
  await writeFile(wrapper, `#!/bin/sh\nexec '${qemu}' -bios '${firmware}' "$@"\n`);
  await chmod(wrapper, 0o755);
  return wrapper;
}
