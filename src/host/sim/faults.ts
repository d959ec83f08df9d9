import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { atomicWriteFile } from '../../lib/atomic.ts';

/**
 * Fault injection for the sim kernel, kept in `<dir>/sim/faults.json` so that a test can arm a
 * fault for a daemon running in another process. A rule makes the Nth matching operation
 * (counted from when the rule was armed) fail with an errno, or be slow, or both.
 */
export type FaultOp = 'writeSysfs' | 'setVf' | 'vfTable' | 'setVfPort';

export interface FaultRule {
  readonly op: FaultOp;
  /** A substring of the operation's key: "<path>=<value>" for writeSysfs; "<pf> vf <n> <what>"
   *  for setVf, one attribute per request ("enp6s0f0 vf 3 admin MAC 00:00:00:00:00:00",
   *  "... VLAN 0", "... trust on"); "<pf> vf <n> <request> <profile>" for setVfPort; the PF
   *  netdev for vfTable. Absent = every operation of that kind. */
  readonly match?: string;
  /** 1-based: which matching operation fails. */
  readonly nth: number;
  readonly errno?: string;
  readonly delayMs?: number;
  /** setVf of an admin MAC: accepted, but the VF table shows it only this much later (a
   *  driver that programs the MAC through a VF reset, as i40e does, on a slow day). */
  readonly lateMs?: number;
}

interface StoredRule extends FaultRule {
  seen: number;
}

const file = (root: string): string => join(root, 'sim', 'faults.json');

function load(root: string): StoredRule[] {
  try {
    return (JSON.parse(readFileSync(file(root), 'utf8')) as { rules: StoredRule[] }).rules;
  } catch {
    return [];
  }
}

export async function injectFault(root: string, rule: FaultRule): Promise<void> {
  if (!Number.isInteger(rule.nth) || rule.nth < 1)
    throw new PassthruError('INVALID_ARG', 'a fault rule needs nth >= 1');
  const rules = [...load(root), { ...rule, seen: 0 }];
  await atomicWriteFile(file(root), JSON.stringify({ rules }, null, 1));
}

export async function clearFaults(root: string): Promise<void> {
  await atomicWriteFile(file(root), JSON.stringify({ rules: [] }));
}

/** Counts the operation against the armed rules; fires (delay, then errno) the one whose turn
 *  it is, and answers it (for effects the operation itself applies, such as lateMs). A fired
 *  rule is dropped. */
export async function checkFault(root: string, op: FaultOp, key: string): Promise<FaultRule | undefined> {
  const rules = load(root);
  if (rules.length === 0) return undefined;
  let fired: StoredRule | undefined;
  const left: StoredRule[] = [];
  for (const r of rules) {
    if (r.op === op && (r.match === undefined || key.includes(r.match))) {
      r.seen++;
      if (r.seen === r.nth && fired === undefined) {
        fired = r;
        continue;
      }
    }
    left.push(r);
  }
  await atomicWriteFile(file(root), JSON.stringify({ rules: left }, null, 1));
  if (!fired) return undefined;
  if (fired.delayMs !== undefined) await new Promise((r) => setTimeout(r, fired.delayMs));
  if (fired.errno !== undefined) {
    throw new PassthruError('HOST_FAILED', `injected fault: ${op} ${key} failed (${fired.errno})`, {
      errno: fired.errno,
    });
  }
  return fired;
}
