import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every file and link of a sim host, path -> content (or '-> target'): what "the host is exactly
 * as before" means for the sim. Left out: the fault rules (the test's own) and the lock, and what
 * the kernel itself changes whenever a VF's driver probes again, as a real one does: the new
 * netdev's ifindex/iflink, the random MAC a VF driver picks when no admin MAC is set (the VF
 * netdev's `address`, the sim's `netdevMac` memory of it), and the sim's counters behind them.
 */
export async function simSnapshot(dir: string): Promise<Map<string, string>> {
  // Synchronous reads: a 4,096-VF tree has ~150,000 files, and a promise per file cost several
  // times the reads themselves (as in host/sysfs.ts).
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (rel === join('sim', 'faults.json') || rel.startsWith(join('sim', 'lock'))) continue;
      // generation and the change log tell watchers that (and where) the host changed: not host state.
      if (rel === join('sim', 'generation') || rel === join('sim', 'changes')) continue;
      // The record of resets done is the sim's testimony, not host state (the kernel keeps none).
      if (rel === join('sim', 'resets')) continue;
      if (/\/net\/[^/]+\/(ifindex|iflink)$/.test(rel)) continue;
      if (/\/net\/[^/]+\/address$/.test(rel) && isVf(join(p, '..', '..', '..'))) continue;
      if (e.isSymbolicLink()) out.set(rel, `-> ${readlinkSync(p)}`);
      else if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(rel, normalise(rel, readFileSync(p, 'utf8')));
    }
  };
  walk(dir);
  return Promise.resolve(out);
}

function isVf(deviceDir: string): boolean {
  try {
    lstatSync(join(deviceDir, 'physfn'));
    return true;
  } catch {
    return false;
  }
}

function normalise(rel: string, text: string): string {
  if (rel === join('sim', 'host.json')) {
    const state = JSON.parse(text) as Record<string, unknown>;
    delete state['nextIfindex'];
    delete state['nextMac'];
    return JSON.stringify(state);
  }
  if (rel.startsWith(join('sim', 'netlink'))) {
    const t = JSON.parse(text) as { vfs: Record<string, unknown>[] };
    for (const row of t.vfs) delete row['netdevMac'];
    return JSON.stringify(t);
  }
  return text;
}

/** The paths whose content differs (or that exist on one side only), for a readable failure. */
export function snapshotDiff(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys]
    .filter((k) => a.get(k) !== b.get(k))
    .sort()
    .map((k) => `${k}: ${JSON.stringify(a.get(k))} -> ${JSON.stringify(b.get(k))}`);
}
