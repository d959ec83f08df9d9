import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { atomicWriteFile } from '../../lib/atomic.ts';
import { readPciDevice } from '../inventory.ts';
import type { Datapath, SteerTarget } from '../datapath.ts';
import type { Sysfs } from '../types.ts';
import { simDir } from './state.ts';

/**
 * The PF's embedded switch, as far as migration moves it: for each guest MAC, where the switch
 * delivers frames for it — to a VF (`vf3`: the VF's MAC filter holds it), to the standby path
 * (`standby`: the PF's uplink side, the virtio standby's macvtap/bridge), or nowhere.
 *
 * A real NIC's switch steers by the VF's MAC filter: while the MAC is programmed on the VF,
 * frames for it go to the VF even when no driver is there (a guest whose VF was unplugged loses
 * them); removing it lets the PF's FDB deliver them to the standby path. The sim keeps every
 * move with a sequence number and a time, in <root>/sim/steering.json (beside the port-profile answers of switch.json), so a test (another
 * process) can read where each MAC was steered at every moment and in what order.
 */
export interface SwitchMove {
  readonly seq: number;
  /** ms since the epoch */
  readonly at: number;
  readonly pf: string;
  readonly mac: string;
  readonly to: SteerTarget;
  /** Why: the event that moved it (UNPLUG_PRIMARY, FAILOVER_NEGOTIATED, rollback ...). */
  readonly reason: string;
}

export interface SwitchState {
  /** Where each MAC is steered now, by PF netdev. */
  readonly steering: Readonly<Record<string, Readonly<Record<string, SteerTarget>>>>;
  readonly moves: readonly SwitchMove[];
}

const steeringFile = (root: string): string => join(simDir(root), 'steering.json');

export function readSwitch(root: string): SwitchState {
  let text: string;
  try {
    text = readFileSync(steeringFile(root), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { steering: {}, moves: [] };
    throw err;
  }
  try {
    return JSON.parse(text) as SwitchState;
  } catch (err) {
    throw new PassthruError('STATE_CORRUPT', `sim switch file ${steeringFile(root)} is not valid JSON`, { cause: err });
  }
}

/** One writer per sim host at a time (a daemon serves one host). */
const queues = new Map<string, Promise<unknown>>();

/** Steers `mac` on `pf`'s switch to `to`; the move is written (fsync) before this resolves. */
export function steerMac(root: string, pf: string, mac: string, to: SteerTarget, reason: string): Promise<void> {
  const work = async (): Promise<void> => {
    const s = readSwitch(root);
    const steering = { ...s.steering, [pf]: { ...(s.steering[pf] ?? {}), [mac.toLowerCase()]: to } };
    const move: SwitchMove = { seq: s.moves.length + 1, at: Date.now(), pf, mac: mac.toLowerCase(), to, reason };
    await atomicWriteFile(steeringFile(root), `${JSON.stringify({ steering, moves: [...s.moves, move] }, null, 2)}\n`);
  };
  const next = (queues.get(root) ?? Promise.resolve()).then(work, work);
  queues.set(
    root,
    next.catch(() => undefined),
  );
  return next;
}

/** The sim's Datapath: this switch model, where a test reads every move in order. */
export function simDatapath(root: string, sysfs: Sysfs): Datapath {
  return {
    steer: async (vf, mac, to, reason) => {
      const dev = await readPciDevice(sysfs, vf);
      if (!dev.physfn)
        throw new PassthruError('DEVICE_NOT_ASSIGNABLE', `${dev.name} is not a VF: no switch steers to it`);
      const pf = await readPciDevice(sysfs, dev.physfn.pf);
      const pfNetdev = pf.netdevs[0]?.name ?? pf.name;
      const target: SteerTarget = to === 'vf' ? `vf${dev.physfn.index}` : to;
      await steerMac(root, pfNetdev, mac, target, reason);
      return target;
    },
  };
}
