import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the QEMU end-to-end tests need from the machine, found in one place so every e2e test
 * (the qemu room's and the daemon's) skips or fails the same way:
 *   - a QEMU binary: PASSTHRU_QEMU, else qemu-system-x86_64 on PATH;
 *   - the test guest built by `npm run guest:build`: PASSTHRU_GUEST_DIR, else <repo>/.cache/guest.
 * Missing either, a test SKIPS with the reason, except under PASSTHRU_REQUIRE_E2E=1 (CI), where
 * it FAILS with the same reason: CI must not go green on e2e tests that never ran.
 */
export interface GuestImage {
  readonly dir: string;
  readonly vmlinux: string;
  readonly initrd: string;
  /** Kernel command line the guest expects (serial console on ttyS0). */
  readonly append: string;
  readonly kernelVersion: string;
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function guestDir(): string {
  return resolve(process.env['PASSTHRU_GUEST_DIR'] ?? join(REPO_ROOT, '.cache', 'guest'));
}

/** The built guest, or why there is none. */
export function findGuest(): GuestImage | string {
  const dir = guestDir();
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return `no test guest in ${dir} (run: npm run guest:build)`;
  }
  const m = manifest as Record<string, unknown>;
  const str = (k: string, dflt: string): string => (typeof m[k] === 'string' ? m[k] : dflt);
  const guest: GuestImage = {
    dir,
    vmlinux: join(dir, str('vmlinux', 'vmlinux')),
    initrd: join(dir, str('initrd', 'initrd.cpio.gz')),
    append: str('append', 'console=ttyS0 quiet loglevel=3 panic=-1'),
    kernelVersion: str('kernelVersion', 'unknown'),
  };
  for (const f of [guest.vmlinux, guest.initrd]) {
    if (!readable(f)) return `test guest in ${dir} is incomplete: ${f} missing (run: npm run guest:build)`;
  }
  return guest;
}

/** The QEMU binary, or why there is none. */
export function findQemu(): { readonly binary: string } | string {
  const named = process.env['PASSTHRU_QEMU'];
  if (named !== undefined && named !== '') {
    return executable(named) ? { binary: named } : `PASSTHRU_QEMU=${named} is not an executable file`;
  }
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'qemu-system-x86_64');
    if (dir !== '' && executable(candidate)) return { binary: candidate };
  }
  return 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)';
}

export interface E2eNeeds {
  readonly qemu: string;
  readonly guest: GuestImage;
}

export interface E2eEnv {
  /** For node:test's `skip` option: the reason, or undefined when the test must run. */
  readonly skip: string | undefined;
  /** Inside the test: what it needs, or an Error with the reason (the test then fails). */
  need(): E2eNeeds;
}

export function requireE2e(): boolean {
  return process.env['PASSTHRU_REQUIRE_E2E'] === '1';
}

export function e2eEnv(): E2eEnv {
  const qemu = findQemu();
  const guest = findGuest();
  const reasons = [typeof qemu === 'string' ? qemu : undefined, typeof guest === 'string' ? guest : undefined].filter(
    (r) => r !== undefined,
  );
  const reason = reasons.length > 0 ? reasons.join('; ') : undefined;
  return {
    skip: reason !== undefined && !requireE2e() ? reason : undefined,
    need(): E2eNeeds {
      if (typeof qemu === 'string' || typeof guest === 'string') {
        throw new Error(`PASSTHRU_REQUIRE_E2E=1 but the e2e test cannot run: ${reason ?? ''}`);
      }
      return { qemu: qemu.binary, guest };
    },
  };
}

/** For tests that need QEMU but no guest (QMP, process handling). */
export function qemuEnv(): { readonly skip: string | undefined; need(): string } {
  const qemu = findQemu();
  const reason = typeof qemu === 'string' ? qemu : undefined;
  return {
    skip: reason !== undefined && !requireE2e() ? reason : undefined,
    need(): string {
      if (typeof qemu === 'string') throw new Error(`PASSTHRU_REQUIRE_E2E=1 but the e2e test cannot run: ${qemu}`);
      return qemu.binary;
    },
  };
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
