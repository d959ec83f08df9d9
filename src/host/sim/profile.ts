import { PassthruError } from '../../conf/error.ts';
import { parseMac } from '../../conf/mac.ts';
import broadcom5719 from './profiles/broadcom-bcm5719.json' with { type: 'json' };
import gpuWithAudio from './profiles/gpu-with-audio.json' with { type: 'json' };
import intel82576 from './profiles/intel-82576.json' with { type: 'json' };
import intelX710 from './profiles/intel-x710-2port.json' with { type: 'json' };
import mellanoxCx3 from './profiles/mellanox-cx3-dualport.json' with { type: 'json' };
import mellanoxCx5 from './profiles/mellanox-cx5.json' with { type: 'json' };
import switchNoAcs from './profiles/pcie-switch-no-acs.json' with { type: 'json' };
import { scaleProfile } from './profiles/scale.ts';

/**
 * A simulated host's topology, as JSON. `createSimHost` turns it into a sysfs-shaped tree.
 *
 * Format (all numbers decimal unless the field says hex; hex fields are strings like "0x8086"):
 * {
 *   "name": "intel-x710-2port",
 *   "description": "one line",
 *   "numaNodes": 2,                      // nodes 0..n-1; devices say which one they sit on
 *   "drivers": ["vfio-pci"],            // drivers loaded besides those the devices name
 *   "devices": [ Device, ... ]          // on bus 0 of PCI domain 0000 (host bridge pci0000:00)
 * }
 * Device = {
 *   "slot": 1, "function": 0,
 *   "kind": "root-port" | "switch-upstream" | "switch-downstream" | "endpoint",
 *   "vendor": "0x8086", "device": "0x1572", "class": "0x020000",
 *   "driver": "i40e",                   // bound at boot; absent = no driver
 *   "numaNode": 0,                      // absent = -1 (no NUMA)
 *   "iommuGroup": "nic0",               // devices with the same label share one group; absent = own group
 *   "multifunction": true,              // the header's multifunction bit
 *   "flr": true,                        // DevCap FLR
 *   "pmReset": true,                    // PM reset (no No_Soft_Reset): the reset kinds a function has
 *   "acs": false,                       // ports: has an ACS capability
 *   "link": { "speed": 8, "width": 8 }, // PCIe link capability (GT/s, lanes)
 *   "secondaryBus": 6,                  // bridges: the bus behind them
 *   "children": [ Device, ... ],        // bridges: devices on the secondary bus
 *   "netdevs": [ { "name": "enp6s0f0", "mac": "3c:fd:fe:a0:06:00", "devPort": 0,
 *                  "physPortId": "3cfdfea00600", "physPortName": "p0", "operstate": "up",
 *                  "defaultRoute": "ipv4" } ],   // the host's default route goes out here: ipv4, ipv6, both
 *   "disks": [ { "name": "nvme0n1", "dev": "259:0",          // storage controllers: block devices
 *                "partitions": [ { "name": "nvme0n1p2", "dev": "259:2", "mount": "/", "fstype": "ext4" } ] } ],
 *   "sriov": {
 *     "totalVfs": 64, "numVfs": 8, "offset": 16, "stride": 1,
 *     "vfDevice": "0x154c", "vfDriver": "iavf",
 *     "vfNetdev": "enp6s0f0v{vf}",      // name of VF n's netdev ({vf} = index, {port} = port)
 *     "vfPorts": 1,                     // netdevs per VF (2 on mlx4 dual port)
 *     "vfPhysPortId": false,            // VF netdevs carry their PF port's phys_port_id (mlx4)
 *     "autoprobe": true,
 *     "representors": { "netdev": "ens1f0_{vf}", "pfNumber": 0 }   // switchdev (mlx5)
 *   }
 * }
 */
export interface Profile {
  readonly name: string;
  readonly description: string;
  readonly numaNodes: number;
  /** [guest] node i's CPUs: real CPUs of the machine QEMU runs on, as a cpulist ("0-1"), so
   *  that pinning a guest to a sim node pins it to real CPUs (/sys/devices/system/node). */
  readonly numaCpus?: readonly string[];
  readonly drivers: readonly string[];
  readonly devices: readonly ProfileDevice[];
}

export type DeviceKind = 'root-port' | 'switch-upstream' | 'switch-downstream' | 'endpoint';

export interface ProfileDevice {
  readonly slot: number;
  readonly function: number;
  readonly kind: DeviceKind;
  readonly vendor: number;
  readonly device: number;
  readonly class: number;
  readonly driver?: string;
  readonly numaNode?: number;
  readonly iommuGroup?: string;
  readonly multifunction?: boolean;
  readonly flr?: boolean;
  /** PM reset: the PM capability does not say No_Soft_Reset. */
  readonly pmReset?: boolean;
  readonly acs?: boolean;
  readonly link?: { readonly speed: number; readonly width: number };
  readonly secondaryBus?: number;
  readonly children?: readonly ProfileDevice[];
  readonly netdevs?: readonly ProfileNetdev[];
  readonly sriov?: ProfileSriov;
  /** Block devices the device's driver creates when it binds (sim/host-files.ts). */
  readonly disks?: readonly ProfileDisk[];
}

/** A disk (or partition) as the kernel names it, with its major:minor and where it is mounted. */
export interface ProfileBlock {
  readonly name: string;
  readonly dev: string;
  readonly mount?: string;
  readonly fstype?: string;
}

export interface ProfileDisk extends ProfileBlock {
  readonly partitions?: readonly ProfileBlock[];
}

export interface ProfileNetdev {
  readonly name: string;
  readonly mac: string;
  readonly devPort?: number;
  readonly physPortId?: string;
  readonly physPortName?: string;
  readonly operstate?: string;
  /** The host's default route goes out of this netdev (sim/host-files.ts writes /proc/net/route). */
  readonly defaultRoute?: 'ipv4' | 'ipv6' | 'both';
}

export interface ProfileSriov {
  readonly totalVfs: number;
  readonly numVfs: number;
  readonly offset: number;
  readonly stride: number;
  readonly vfDevice: number;
  readonly vfDriver: string;
  readonly vfNetdev: string;
  readonly vfPorts?: number;
  readonly autoprobe?: boolean;
  /** VF netdevs report the phys_port_id of their PF port (mlx4). */
  readonly vfPhysPortId?: boolean;
  /** switchdev mode: a representor netdev per VF on the PF. */
  readonly representors?: { readonly netdev: string; readonly pfNumber: number };
}

const BUILTIN: Record<string, unknown> = {
  'intel-x710-2port': intelX710,
  'mellanox-cx3-dualport': mellanoxCx3,
  'mellanox-cx5': mellanoxCx5,
  'intel-82576': intel82576,
  'broadcom-bcm5719': broadcom5719,
  'gpu-with-audio': gpuWithAudio,
  'pcie-switch-no-acs': switchNoAcs,
};

/** Profiles that generate their devices rather than listing them (too big to write out). */
const GENERATED: Record<string, () => unknown> = {
  'scale-16x256': () => scaleProfile(16, 256),
};

export function listProfiles(): string[] {
  return [...Object.keys(BUILTIN), ...Object.keys(GENERATED)].sort();
}

/** A built-in profile in its JSON form. */
export function profileJson(name: string): unknown {
  const raw = BUILTIN[name] ?? GENERATED[name]?.();
  if (raw === undefined) {
    throw new PassthruError('INVALID_ARG', `unknown sim profile '${name}'`, {
      hint: `known profiles: ${listProfiles().join(', ')}`,
    });
  }
  return raw;
}

export function loadProfile(name: string): Profile {
  return parseProfile(profileJson(name), `profile '${name}'`);
}

// ---- validation: a profile may come from a user's file, so every field is checked ----

type Json = Record<string, unknown>;

function bad(where: string, why: string): PassthruError {
  return new PassthruError('INVALID_ARG', `${where}: ${why}`);
}

function obj(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(where, 'must be an object');
  return v as Json;
}

function str(o: Json, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw bad(where, `'${key}' must be a non-empty string`);
  return v;
}

function optStr(o: Json, key: string, where: string): string | undefined {
  return o[key] === undefined ? undefined : str(o, key, where);
}

function int(o: Json, key: string, where: string, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(where, `'${key}' must be an integer from ${min} to ${max}`);
  }
  return v;
}

function optInt(o: Json, key: string, where: string, min: number, max: number): number | undefined {
  return o[key] === undefined ? undefined : int(o, key, where, min, max);
}

function hex(o: Json, key: string, where: string, max: number): number {
  const v = str(o, key, where);
  const n = /^0x[0-9a-fA-F]+$/.test(v) ? Number.parseInt(v.slice(2), 16) : Number.NaN;
  if (!Number.isInteger(n) || n > max) throw bad(where, `'${key}' must be a hex string like "0x8086"`);
  return n;
}

function optBool(o: Json, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw bad(where, `'${key}' must be true or false`);
  return v;
}

function arr(o: Json, key: string, where: string): unknown[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v)) throw bad(where, `'${key}' must be an array`);
  return v;
}

const KINDS: readonly DeviceKind[] = ['root-port', 'switch-upstream', 'switch-downstream', 'endpoint'];

function parseNetdev(v: unknown, where: string): ProfileNetdev {
  const o = obj(v, where);
  const name = str(o, 'name', where);
  const mac = str(o, 'mac', where);
  try {
    parseMac(mac);
  } catch (err) {
    throw bad(where, err instanceof Error ? err.message : String(err));
  }
  return {
    name,
    mac: mac.toLowerCase(),
    ...opt('devPort', optInt(o, 'devPort', where, 0, 255)),
    ...opt('physPortId', optStr(o, 'physPortId', where)),
    ...opt('physPortName', optStr(o, 'physPortName', where)),
    ...opt('operstate', optStr(o, 'operstate', where)),
    ...opt('defaultRoute', oneOf(o, 'defaultRoute', where, ['ipv4', 'ipv6', 'both'] as const)),
  };
}

function oneOf<T extends string>(o: Json, key: string, where: string, values: readonly T[]): T | undefined {
  const v = optStr(o, key, where);
  if (v !== undefined && !(values as readonly string[]).includes(v))
    throw bad(where, `'${key}' must be one of ${values.join(', ')}`);
  return v as T | undefined;
}

function parseBlock(v: unknown, where: string): ProfileBlock {
  const o = obj(v, where);
  const name = str(o, 'name', where);
  const dev = str(o, 'dev', where);
  if (!/^[1-9]\d*:\d+$/.test(dev)) throw bad(where, `'dev' must be a block device's major:minor, like "259:2"`);
  const mount = optStr(o, 'mount', where);
  if (mount !== undefined && !mount.startsWith('/')) throw bad(where, `'mount' must be an absolute path`);
  return {
    name,
    dev,
    ...opt('mount', mount),
    ...opt('fstype', optStr(o, 'fstype', where)),
  };
}

function parseDisk(v: unknown, where: string): ProfileDisk {
  const here = `${where} disk`;
  const o = obj(v, here);
  return {
    ...parseBlock(v, here),
    ...opt(
      'partitions',
      o['partitions'] === undefined
        ? undefined
        : arr(o, 'partitions', here).map((p) => parseBlock(p, `${here} partition`)),
    ),
  };
}

function parseSriov(v: unknown, where: string): ProfileSriov {
  const o = obj(v, where);
  const totalVfs = int(o, 'totalVfs', where, 1, 65535);
  return {
    totalVfs,
    numVfs: int(o, 'numVfs', where, 0, totalVfs),
    offset: int(o, 'offset', where, 1, 65535),
    stride: int(o, 'stride', where, 1, 65535),
    vfDevice: hex(o, 'vfDevice', where, 0xffff),
    vfDriver: str(o, 'vfDriver', where),
    vfNetdev: str(o, 'vfNetdev', where),
    ...opt('vfPorts', optInt(o, 'vfPorts', where, 1, 4)),
    ...opt('autoprobe', optBool(o, 'autoprobe', where)),
    ...opt('vfPhysPortId', optBool(o, 'vfPhysPortId', where)),
    ...opt(
      'representors',
      o['representors'] === undefined
        ? undefined
        : (() => {
            const r = obj(o['representors'], `${where} representors`);
            return { netdev: str(r, 'netdev', where), pfNumber: int(r, 'pfNumber', where, 0, 255) };
          })(),
    ),
  };
}

/** exactOptionalPropertyTypes: absent keys must stay absent, not become `undefined`. */
function opt<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>;
}

function linkSpeed(o: Json, where: string): number {
  const v = o['speed'];
  if (typeof v !== 'number' || ![2.5, 5, 8, 16, 32, 64].includes(v)) {
    throw bad(where, "'speed' must be a PCIe link speed in GT/s: 2.5, 5, 8, 16, 32 or 64");
  }
  return v;
}

function parseDevice(v: unknown, where: string): ProfileDevice {
  const o = obj(v, where);
  const slot = int(o, 'slot', where, 0, 31);
  const fn = int(o, 'function', where, 0, 7);
  const here = `${where} device ${slot.toString(16).padStart(2, '0')}.${fn}`;
  const kind = str(o, 'kind', here);
  if (!(KINDS as readonly string[]).includes(kind)) throw bad(here, `'kind' must be one of ${KINDS.join(', ')}`);
  const isBridge = kind !== 'endpoint';
  const link = o['link'] === undefined ? undefined : obj(o['link'], `${here} link`);
  const sriov = o['sriov'] === undefined ? undefined : parseSriov(o['sriov'], `${here} sriov`);
  if (isBridge && o['secondaryBus'] === undefined) throw bad(here, `a ${kind} needs 'secondaryBus'`);
  return {
    slot,
    function: fn,
    kind: kind as DeviceKind,
    vendor: hex(o, 'vendor', here, 0xffff),
    device: hex(o, 'device', here, 0xffff),
    class: hex(o, 'class', here, 0xffffff),
    ...opt('driver', optStr(o, 'driver', here)),
    ...opt('numaNode', optInt(o, 'numaNode', here, 0, 63)),
    ...opt('iommuGroup', optStr(o, 'iommuGroup', here)),
    ...opt('multifunction', optBool(o, 'multifunction', here)),
    ...opt('flr', optBool(o, 'flr', here)),
    ...opt('pmReset', optBool(o, 'pmReset', here)),
    ...opt('acs', optBool(o, 'acs', here)),
    ...opt(
      'link',
      link && { speed: linkSpeed(link, `${here} link`), width: int(link, 'width', `${here} link`, 1, 32) },
    ),
    ...opt('secondaryBus', optInt(o, 'secondaryBus', here, 1, 255)),
    ...opt('children', isBridge ? arr(o, 'children', here).map((c) => parseDevice(c, `${here} >`)) : undefined),
    ...opt(
      'netdevs',
      o['netdevs'] === undefined ? undefined : arr(o, 'netdevs', here).map((n) => parseNetdev(n, `${here} netdev`)),
    ),
    ...opt('sriov', sriov),
    ...opt('disks', o['disks'] === undefined ? undefined : arr(o, 'disks', here).map((d) => parseDisk(d, here))),
  };
}

export function parseProfile(raw: unknown, where = 'profile'): Profile {
  const o = obj(raw, where);
  return {
    name: str(o, 'name', where),
    description: str(o, 'description', where),
    numaNodes: optInt(o, 'numaNodes', where, 1, 64) ?? 1,
    ...opt(
      'numaCpus',
      o['numaCpus'] === undefined
        ? undefined
        : arr(o, 'numaCpus', where).map((c, i) => {
            if (typeof c !== 'string') throw bad(where, `numaCpus[${i}] must be a cpulist string`);
            return c;
          }),
    ),
    drivers: arr(o, 'drivers', where).map((d, i) => {
      if (typeof d !== 'string') throw bad(where, `drivers[${i}] must be a string`);
      return d;
    }),
    devices: arr(o, 'devices', where).map((d) => parseDevice(d, where)),
  };
}
