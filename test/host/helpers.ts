import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassthruError } from '../../src/conf/error.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { openSimHost, type SimKernel } from '../../src/host/sim/kernel.ts';

/** A fresh sim host in a temp dir; `done()` removes it. */
export async function simHost(
  profile: string | { readonly json: unknown } = 'intel-x710-2port',
): Promise<{ dir: string; kernel: SimKernel; done: () => void }> {
  const base = mkdtempSync(join(tmpdir(), 'passthru-host-'));
  const dir = join(base, 'host');
  await createSimHost(dir, profile);
  const kernel = await openSimHost(dir);
  return { dir, kernel, done: () => rmSync(base, { recursive: true, force: true }) };
}

/** Matches a PassthruError by code (and errno when given), for assert.rejects/throws. */
export function hostError(code: string, errno?: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof PassthruError && e.code === code && (errno === undefined || e.errno === errno);
}

/** Every file, link and mode of the sim host except the bookkeeping of one operation. */
export function treeImage(dir: string): string {
  const skip = new Set([
    'sim/generation',
    'sim/changes',
    'sim/resets',
    'sim/lock',
    'sim/faults.json',
    'sim/switch.json',
  ]);
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (skip.has(r)) continue;
      const st = lstatSync(join(dir, r));
      if (st.isSymbolicLink()) out.push(`${r} -> ${readlinkSync(join(dir, r))}`);
      else if (st.isDirectory()) walk(r);
      else out.push(`${r} ${st.mode.toString(8)} ${readFileSync(join(dir, r), 'utf8')}`);
    }
  };
  walk('');
  return out.join('\n');
}
