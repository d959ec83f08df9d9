import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What the QEMU end-to-end tests need from the machine, found in one place so every e2e test
 * (the qemu room's and the daemon's) skips or fails the same way:
 *   - a QEMU binary: PASSTHRU_QEMU, else qemu-system-x86_64 on PATH;
 *   - the test guest built by `npm run guest:build`: PASSTHRU_GUEST_DIR, else <repo>/.cache/guest.
 * Missing either, a test SKIPS with the reason, except under PASSTHRU_REQUIRE_E2E=1 (CI), where
 * it FAILS with the same reason: CI must not go green on e2e tests that never ran.
 */
import { findGuest, findQemu, type GuestImage } from '../../../src/cli/local.ts';

export { findGuest, findQemu, type GuestImage };

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

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

/** Why a test that makes a network namespace cannot run here (root and iproute2), if it cannot. */
export function netnsSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (ip)';
  }
  return undefined;
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
