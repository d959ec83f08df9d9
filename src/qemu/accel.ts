import { readFile } from 'node:fs/promises';

export type Accel = 'kvm' | 'tcg';

/**
 * KVM only when a hardware KVM module is loaded. A /dev/kvm backed by anything else (kvm-pvm on
 * nested sandboxes) runs an unmodified guest kernel's ring-0 code emulated, ~300x slower than TCG
 * (measured in the VM lab: TCG ran a whole Debian-kernel VM in 3.6 s, kvm-pvm gave no shell in
 * 300 s), so its mere presence is no reason to use it.
 */
export function chooseAccel(procModulesText: string): Accel {
  for (const line of procModulesText.split('\n')) {
    const name = line.split(' ', 1)[0];
    if (name === 'kvm_intel' || name === 'kvm_amd') return 'kvm';
  }
  return 'tcg';
}

/** The text of /proc/modules, or '' where it cannot be read (a kernel without modules). */
export async function readProcModules(path = '/proc/modules'): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}
