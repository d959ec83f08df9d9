import { mkdirSync, readFileSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassthruError } from '../../conf/error.ts';

/**
 * One kernel operation at a time across every process that has the sim host open (a daemon and
 * a test reading VF tables, two daemons in a migration test): each operation reads the state,
 * applies the rules and writes it back, so two at once would lose one's update. mkdir is atomic;
 * the holder's pid is in the lock so a lock left by a killed process is taken over.
 */
export async function withSimLock<T>(root: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const lock = join(root, 'sim', 'lock');
  const start = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (holderGone(lock)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - start > timeoutMs) {
        throw new PassthruError('TIMEOUT', `the sim host ${root} stayed locked for ${timeoutMs} ms (${lock})`);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  try {
    return await fn();
  } finally {
    // The two entries we made, not a recursive removal: every kernel operation takes the lock,
    // and rm -r (a listing, a stat per entry) cost as much as the operation on a busy disk.
    unlinkSync(join(lock, 'pid'));
    rmdirSync(lock);
  }
}

function holderGone(lock: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
  } catch {
    // No pid file: being created right now, or its creator was killed between mkdir and the
    // write. A lock is held for milliseconds, so one without a pid after a second is stale.
    try {
      return Date.now() - statSync(lock).mtimeMs > 1000;
    } catch {
      return false;
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
