import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * Every file and link of a sim host, path -> content (or '-> target'): what "the host is exactly
 * as before" means for the sim. Left out: the fault rules (the test's own) and the lock, and what
 * the kernel itself changes whenever a VF's driver probes again, as a real one does: the new
 * netdev's ifindex/iflink, the random MAC a VF driver picks when no admin MAC is set (the VF
 * netdev's `address`, the sim's `netdevMac` memory of it), and the sim's counters behind them.
 */
export async function simSnapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (rel === join('sim', 'faults.json') || rel.startsWith(join('sim', 'lock'))) continue;
      // generation and the change log tell watchers that (and where) the host changed: not host state.
      if (rel === join('sim', 'generation') || rel === join('sim', 'changes')) continue;
      // The record of resets done is the sim's testimony, not host state (the kernel keeps none).
      if (rel === join('sim', 'resets')) continue;
      if (/\/net\/[^/]+\/(ifindex|iflink)$/.test(rel)) continue;
      if (/\/net\/[^/]+\/address$/.test(rel) && (await isVf(join(p, '..', '..', '..')))) continue;
      if (e.isSymbolicLink()) out.set(rel, `-> ${await readlink(p)}`);
      else if (e.isDirectory()) await walk(p);
      else if ((await lstat(p)).isFile()) out.set(rel, normalise(rel, await readFile(p, 'utf8')));
    }
  };
  await walk(dir);
  return out;
}

async function isVf(deviceDir: string): Promise<boolean> {
  return lstat(join(deviceDir, 'physfn')).then(
    () => true,
    () => false,
  );
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
