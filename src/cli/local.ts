import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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

export interface Guest {
  readonly kernel: string;
  readonly initrd: string;
}

/** The tiny test guest that `npm run guest:build` makes, or undefined with the reason. */
export function findGuest(): Guest | string {
  const dir = resolve(process.env['PASSTHRU_GUEST_DIR'] ?? join(projectRoot(), '.cache', 'guest'));
  if (!existsSync(join(dir, 'manifest.json'))) return `no test guest in ${dir} (build it with 'npm run guest:build')`;
  return { kernel: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.cpio.gz') };
}

/** The QEMU binary on PATH, or undefined. */
export function findQemu(binary = process.env['PASSTHRU_QEMU'] ?? 'qemu-system-x86_64'): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Starts passthrud as a child, with the same runtime as this CLI (tsx from src, node from dist). */
export function spawnDaemon(
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): ChildProcess {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = join(HERE, '..', 'daemon', fromSource ? 'main.ts' : 'main.js');
  const runtime = fromSource ? ['--import', 'tsx'] : [];
  const fd = openSync(logFile, 'a');
  return spawn(process.execPath, [...runtime, entry, ...args], { stdio: ['ignore', fd, fd], env });
}
