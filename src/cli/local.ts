import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassthruError } from '../conf/error.ts';

/** Local helpers of the commands that run things on this machine (quickstart). */

const HERE = dirname(fileURLToPath(import.meta.url));

/** The project's root: the nearest directory above this file with passthru's package.json. */
export function projectRoot(): string {
  let dir = HERE;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'passthru') return dir;
    const up = dirname(dir);
    if (up === dir) throw new PassthruError('INTERNAL', `cannot find passthru's package.json above ${HERE}`);
    dir = up;
  }
}

/**
 * What the quickstart, the e2e tests and the benches run guests with, found the same way:
 *   - the QEMU binary: PASSTHRU_QEMU, else qemu-system-x86_64 on PATH;
 *   - the test guest built by `npm run guest:build`: PASSTHRU_GUEST_DIR, else <repo>/.cache/guest.
 * Each answers the reason as a string when the piece is missing.
 */
export interface GuestImage {
  readonly dir: string;
  readonly vmlinux: string;
  readonly initrd: string;
  /** Kernel command line the guest expects (serial console on ttyS0). */
  readonly append: string;
  readonly kernelVersion: string;
}

export function guestDir(): string {
  return resolve(process.env['PASSTHRU_GUEST_DIR'] ?? join(projectRoot(), '.cache', 'guest'));
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

/**
 * Node options of passthrud, also on the first line of `src/daemon/main.ts` (the installed
 * `passthrud` runs through that line; a test keeps the two the same). Both trade a little GC
 * concurrency for resident memory, which a long-running host daemon keeps (docs/performance.md,
 * daemon RSS, measured with 4,096 VFs and 200 domains): a new-space semi-space of 1 MiB instead
 * of V8's 16 (the daemon's allocations are short-lived replies and a host inventory that lives
 * for long; the large nursery held ~25 MB), and one V8 worker thread instead of four (each held
 * its own allocation buffers and malloc arena: ~6 MB).
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=1'] as const;

/** Starts passthrud as a child, with the same runtime as this CLI (tsx from src, node from dist). */
export function spawnDaemon(
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
  /** Another passthrud entry point (the bench runs tsc's dist/ from a source checkout). */
  entryPoint?: string,
  /** In a process group of its own, as a service manager starts it (a test kills that group). */
  detached = false,
): ChildProcess {
  const fromSource = import.meta.url.endsWith('.ts');
  // From the project root, not from this file: the installed CLI is a bundle in dist/cli/.
  const entry = entryPoint ?? join(projectRoot(), fromSource ? 'src/daemon/main.ts' : 'dist/src/daemon/main.js');
  const runtime = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const fd = openSync(logFile, 'a');
  return spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...runtime, entry, ...args], {
    stdio: ['ignore', fd, fd],
    env,
    detached,
  });
}
