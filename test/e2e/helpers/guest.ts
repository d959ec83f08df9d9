import { e2eEnv } from './env.ts';

/** What a QEMU e2e test boots: the QEMU binary and the test guest's kernel and initrd. */
export interface E2eGuest {
  readonly qemu: string;
  readonly kernel: string;
  readonly initrd: string;
  /** Kernel command line for the guest (serial console on ttyS0). */
  readonly append: string;
  readonly kernelVersion: string;
}

/**
 * The guest and QEMU for an e2e test, or the reason the test should be skipped. Under
 * PASSTHRU_REQUIRE_E2E=1 (CI) a missing piece THROWS instead, so the test file fails rather
 * than skipping: use `skip: typeof env === 'string' ? env : false`.
 */
export function e2eGuest(): E2eGuest | string {
  const env = e2eEnv();
  if (env.skip !== undefined) return env.skip;
  const { qemu, guest } = env.need();
  return {
    qemu,
    kernel: guest.vmlinux,
    initrd: guest.initrd,
    append: guest.append,
    kernelVersion: guest.kernelVersion,
  };
}
