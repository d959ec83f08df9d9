import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import type { MacAddress } from '../../conf/mac.ts';
import { atomicWriteFile } from '../../lib/atomic.ts';
import type { PortRequest, PortResponse, VfConfig, VfPortProfile } from '../types.ts';
import { parseProfile, type Profile } from './profile.ts';

/**
 * What the simulated kernel keeps beside the sysfs tree, under `<dir>/sim/`. Everything is
 * read from disk at the start of each operation and written back atomically (tmp + fsync +
 * rename), so two processes that open the same sim host see one kernel.
 *
 *   sim/host.json               { version: 1, profile, counters }            (SimHostState)
 *   sim/netlink/<PF BDF>.json   { version: 1, pf, port, vfs: [VfRow, ...] }  (NetlinkTable)
 *   sim/netlink/<PF BDF>.port1.json  the second port's table (mlx4: one table per PF netdev)
 *   sim/faults.json             fault injection rules (sim/faults.ts)
 *   sim/switch.json             how the switch behind the PFs answers port profiles (SwitchConfig)
 *   sim/steering.json           where the PFs' switches steer each guest MAC, and every move (switch.ts)
 */
export interface SimHostState {
  readonly version: 1;
  /** The profile as JSON (its documented format), parsed again on every read. */
  readonly profileJson: unknown;
  readonly profile: Profile;
  /** Next IOMMU group number for VFs created at run time. */
  nextIommuGroup: number;
  nextIfindex: number;
  /** Counter behind the "random" MACs VF drivers pick when no admin MAC is set: deterministic,
   *  so tests are exact. */
  nextMac: number;
  /** Netdev MAC changes a driver applies later (i40e programs an admin MAC asynchronously):
   *  applied at the start of the next kernel operation. */
  pendingMacs: { readonly file: string; readonly mac: MacAddress }[];
  /** Admin MACs a driver accepted but shows in its VF table only later (fault `lateMs`). */
  lateMacs?: {
    readonly pf: string;
    readonly port: number;
    readonly vf: number;
    readonly mac: MacAddress;
    readonly due: number;
  }[];
}

/** A VF's port on the switch (IFLA_VF_PORT), kept in its table row. */
export interface SimPort {
  readonly profile: VfPortProfile;
  readonly request: PortRequest;
  readonly response?: PortResponse;
  /** While in progress: status reads left before the switch says success; -1 = never. */
  readonly polls?: number;
}

/** How the simulated switch answers a port profile: success (the default), in progress for a
 *  few status reads then success, a failure with its response, or no answer at all. */
export type SwitchAnswer =
  | { readonly answer: 'success' }
  | { readonly answer: 'in-progress'; readonly polls?: number }
  | { readonly answer: 'failure'; readonly response?: PortResponse }
  | { readonly answer: 'timeout' };

/** sim/switch.json: answers by port profile key (the 802.1Qbh profileid, or
 *  "vsi:<managerid>/<typeid>/<typeidversion>" for 802.1Qbg). */
export interface SwitchConfig {
  readonly answers: Readonly<Record<string, SwitchAnswer>>;
}

/** One row of a PF's VF table, plus the MAC the VF's own netdev last had (the sim's memory of
 *  the VF hardware, used to present a VF that has no admin MAC). */
export interface VfRow extends VfConfig {
  readonly netdevMac?: MacAddress;
  /** The VF's port-profile association, when it has one (reported by vfPortStatus, not in the
   *  VF table). */
  readonly port?: SimPort;
}

export interface NetlinkTable {
  readonly version: 1;
  readonly pf: string;
  /** The PF netdev's dev_port whose table this is (0 but on multi-port PFs). */
  readonly port: number;
  readonly vfs: VfRow[];
}

export const simDir = (root: string): string => join(root, 'sim');
const hostFile = (root: string): string => join(simDir(root), 'host.json');
const netlinkFile = (root: string, pf: string, port: number): string =>
  join(simDir(root), 'netlink', port === 0 ? `${pf}.json` : `${pf}.port${port}.json`);

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PassthruError('STATE_CORRUPT', `sim state file ${path} is not valid JSON`, { cause: err });
  }
}

export function readHostState(root: string): SimHostState {
  const raw = readJson(hostFile(root));
  if (raw === undefined) {
    throw new PassthruError('INVALID_ARG', `${root} is not a sim host: ${hostFile(root)} is missing`, {
      hint: 'create one with: passthru sim create DIR --profile intel-x710-2port',
    });
  }
  const o = raw as Partial<SimHostState>;
  if (o.version !== 1 || typeof o.nextIommuGroup !== 'number') {
    throw new PassthruError('STATE_CORRUPT', `sim state file ${hostFile(root)} has an unknown format`);
  }
  return {
    version: 1,
    profileJson: o.profileJson,
    profile: parseProfile(o.profileJson, `${hostFile(root)} profile`),
    nextIommuGroup: o.nextIommuGroup,
    nextIfindex: o.nextIfindex ?? 100,
    nextMac: o.nextMac ?? 1,
    pendingMacs: o.pendingMacs ?? [],
    ...(o.lateMacs && o.lateMacs.length > 0 ? { lateMacs: o.lateMacs } : {}),
  };
}

export async function writeHostState(root: string, state: SimHostState): Promise<void> {
  mkdirSync(simDir(root), { recursive: true });
  // The parsed profile is derived from profileJson and is not stored.
  const onDisk = Object.fromEntries(Object.entries(state).filter(([k]) => k !== 'profile'));
  await atomicWriteFile(hostFile(root), `${JSON.stringify(onDisk, null, 2)}\n`, 0o644);
}

export function readNetlink(root: string, pf: string, port = 0): NetlinkTable {
  const raw = readJson(netlinkFile(root, pf, port));
  if (raw === undefined) return { version: 1, pf, port, vfs: [] };
  const o = raw as Partial<NetlinkTable>;
  if (o.version !== 1 || !Array.isArray(o.vfs)) {
    throw new PassthruError('STATE_CORRUPT', `sim VF table ${netlinkFile(root, pf, port)} has an unknown format`);
  }
  return { version: 1, pf, port, vfs: o.vfs };
}

export async function writeNetlink(root: string, table: NetlinkTable): Promise<void> {
  mkdirSync(join(simDir(root), 'netlink'), { recursive: true });
  await atomicWriteFile(netlinkFile(root, table.pf, table.port), `${JSON.stringify(table, null, 1)}\n`, 0o644);
}

/** A locally administered unicast MAC from the counter (02:5e:..), as VF drivers pick a
 *  random one when the PF gave none. */
export function freshMac(state: SimHostState): MacAddress {
  const n = state.nextMac++;
  const b = [0x02, 0x5e, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':') as MacAddress;
}

const switchFile = (root: string): string => join(simDir(root), 'switch.json');

export function readSwitchConfig(root: string): SwitchConfig {
  const raw = readJson(switchFile(root)) as Partial<SwitchConfig> | undefined;
  return { answers: raw?.answers ?? {} };
}

/** Chooses how the simulated switch answers a port profile (tests, `passthru sim`). */
export async function setSwitchAnswer(root: string, key: string, answer: SwitchAnswer): Promise<void> {
  const c = readSwitchConfig(root);
  mkdirSync(simDir(root), { recursive: true });
  await atomicWriteFile(switchFile(root), `${JSON.stringify({ answers: { ...c.answers, [key]: answer } }, null, 1)}\n`);
}
