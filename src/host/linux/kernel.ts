import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { type MacAddress, parseMac } from '../../conf/mac.ts';
import type { PciAddress } from '../../conf/pci-address.ts';
import { DirSysfs } from '../sysfs.ts';
import type { DevicePresentation, Kernel, VfConfig, VfSettings } from '../types.ts';
import { ipRoute2, type Run, runProcess } from './iproute2.ts';
import { openNetlinkRtnl } from './netlink.ts';
import { quirksOf } from './quirks.ts';
import type { Rtnl, VfDump } from './rtnl.ts';

export interface LinuxOptions {
  /** The directory that plays '/' (tests); '/' on a host. */
  readonly root?: string;
  /** Force a rtnetlink implementation; by default the netlink package, else iproute2. */
  readonly rtnl?: Rtnl;
  readonly run?: Run;
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long verification waits for a driver that programs an admin MAC late. */
  readonly verifyTimeoutMs?: number;
}

export async function openLinuxHost(opts: LinuxOptions = {}): Promise<LinuxKernel> {
  const rtnl = opts.rtnl ?? (await openNetlinkRtnl()) ?? ipRoute2(opts.run ?? runProcess);
  return new LinuxKernel({ ...opts, rtnl });
}

const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The real kernel: sysfs writes as single write(2) calls, VF attributes over rtnetlink, every
 * VF write verified by reading the table back (with the driver's quirks), VF tables checked
 * for truncation against IFLA_NUM_VF and completed from sysfs where the driver exposes the
 * rows there (mlx5's device/sriov/<n>/config).
 */
export class LinuxKernel implements Kernel {
  readonly backend = 'linux' as const;
  readonly sysfs: DirSysfs;
  readonly rtnl: Rtnl;
  readonly #run: Run;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #verifyTimeoutMs: number;

  constructor(opts: LinuxOptions & { readonly rtnl: Rtnl }) {
    this.sysfs = new DirSysfs(opts.root ?? '/');
    this.rtnl = opts.rtnl;
    this.#run = opts.run ?? runProcess;
    this.#sleep = opts.sleep ?? realSleep;
    this.#verifyTimeoutMs = opts.verifyTimeoutMs ?? 2000;
  }

  async writeSysfs(path: string, value: string): Promise<void> {
    let fh;
    try {
      // No O_CREAT, no O_TRUNC: an attribute that does not exist must fail, not be created.
      fh = await open(this.sysfs.at(path), constants.O_WRONLY);
      await fh.write(value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Node says ENOTSUP for errno 95; the kernel's sources and our error table say EOPNOTSUPP.
      const errno = code === 'ENOTSUP' ? 'EOPNOTSUPP' : code;
      throw new PassthruError('HOST_FAILED', `cannot write '${value.trim()}' to ${path}${errno ? ` (${errno})` : ''}`, {
        ...(errno === undefined ? {} : { errno }),
        cause: err,
      });
    } finally {
      await fh?.close();
    }
  }

  async vfTable(pfNetdev: string): Promise<VfConfig[]> {
    const dump = await this.rtnl.readVfs(pfNetdev);
    return [...(await this.#complete(pfNetdev, dump))];
  }

  /** A cut-short list is completed from sysfs when the driver has per-VF files, else refused:
   *  a silently short table would make VFs look free that are not. */
  async #complete(pfNetdev: string, dump: VfDump): Promise<readonly VfConfig[]> {
    const expected =
      dump.numVf ?? Number((await this.sysfs.read(`/sys/class/net/${pfNetdev}/device/sriov_numvfs`)) ?? 0);
    if (!dump.truncated && dump.vfs.length >= expected) return dump.vfs;
    const have = new Set(dump.vfs.map((v) => v.vf));
    const rows = [...dump.vfs];
    for (let vf = 0; vf < expected; vf++) {
      if (have.has(vf)) continue;
      const row = await this.#sysfsRow(pfNetdev, vf);
      if (!row) {
        throw new PassthruError(
          'HOST_FAILED',
          `the VF list of PF ${pfNetdev} came back truncated (${dump.vfs.length} of ${expected} VFs) and its driver has no per-VF sysfs files to complete it (EMSGSIZE)`,
          { errno: 'EMSGSIZE' },
        );
      }
      rows.push(row);
    }
    return rows.sort((a, b) => a.vf - b.vf);
  }

  /** mlx5: /sys/class/net/<pf>/device/sriov/<n>/config, "MAC : ..", "VLAN : ..", ... */
  async #sysfsRow(pfNetdev: string, vf: number): Promise<VfConfig | undefined> {
    const text = await this.sysfs.read(`/sys/class/net/${pfNetdev}/device/sriov/${vf}/config`);
    if (text === undefined) return undefined;
    return parseSriovConfig(vf, text);
  }

  async setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void> {
    const driver = await this.#pfDriver(pfNetdev);
    const q = quirksOf(driver);
    try {
      await this.rtnl.setVf(pfNetdev, vf, settings);
    } catch (err) {
      // Clearing a VLAN that is not set: some drivers answer EPERM; nothing to clear.
      const clearsVlan = settings.vlan?.id === 0 && Object.keys(settings).length === 1;
      if (!(clearsVlan && q.vlanZeroEperm && err instanceof PassthruError && err.errno === 'EPERM')) throw err;
    }
    await this.#verify(pfNetdev, vf, settings, q.macAsync);
  }

  async #pfDriver(pfNetdev: string): Promise<string | undefined> {
    const link = await this.sysfs.readLink(`/sys/class/net/${pfNetdev}/device/driver`);
    return link === undefined ? undefined : basename(link);
  }

  /** Reads the row back; a driver that programs the MAC late gets polled until the deadline. */
  async #verify(pfNetdev: string, vf: number, s: VfSettings, macAsync: boolean): Promise<void> {
    const deadline = macAsync && s.mac !== undefined ? this.#verifyTimeoutMs : 0;
    for (let waited = 0; ; waited += 100) {
      const row = (await this.vfTable(pfNetdev)).find((r) => r.vf === vf);
      const wrong = mismatch(row, s);
      if (wrong === undefined) return;
      if (waited >= deadline) {
        throw new PassthruError('HOST_FAILED', `VF ${vf} of PF ${pfNetdev} did not take the setting: ${wrong}`, {
          hint: 'the PF driver accepted the request but reads back another value',
        });
      }
      await this.#sleep(100);
    }
  }

  async present(address: PciAddress): Promise<DevicePresentation> {
    return Promise.resolve({ kind: 'vfio', host: address });
  }

  async loadModule(name: string): Promise<void> {
    try {
      await this.#run('modprobe', [name]);
    } catch (err) {
      const stderr = (err as { stderr?: unknown }).stderr;
      const text = typeof stderr === 'string' ? stderr : '';
      throw new PassthruError(
        'HOST_FAILED',
        `Failed to load PCI driver module ${name}${text.includes('blacklist') ? ': administratively prohibited' : ''}`,
        { cause: err, hint: text.trim() || `modprobe ${name} failed` },
      );
    }
  }

  close(): void {
    this.rtnl.close?.();
  }
}

/** Which set field does not read back as written; undefined when all do. Fields a driver does
 *  not report (spoofchk/trust of -1) cannot be checked and are not held against it. */
export function mismatch(row: VfConfig | undefined, s: VfSettings): string | undefined {
  if (!row) return 'the VF is missing from the table';
  if (s.mac !== undefined && row.mac !== s.mac) return `admin MAC reads ${row.mac}, not ${s.mac}`;
  if (s.vlan !== undefined) {
    if (row.vlan !== s.vlan.id) return `VLAN reads ${row.vlan}, not ${s.vlan.id}`;
    if (s.vlan.qos !== undefined && row.qos !== s.vlan.qos) return `qos reads ${row.qos}, not ${s.vlan.qos}`;
  }
  if (s.spoofchk !== undefined && row.spoofchk !== undefined && row.spoofchk !== s.spoofchk) {
    return `spoofchk reads ${row.spoofchk ? 'on' : 'off'}`;
  }
  if (s.trust !== undefined && row.trust !== undefined && row.trust !== s.trust)
    return `trust reads ${row.trust ? 'on' : 'off'}`;
  if (s.linkState !== undefined && row.linkState !== undefined && row.linkState !== s.linkState) {
    return `link state reads ${row.linkState}`;
  }
  if (s.rate !== undefined && (row.maxTxRate !== s.rate.maxTx || row.minTxRate !== s.rate.minTx)) {
    return `tx rate reads ${row.minTxRate ?? 0}..${row.maxTxRate ?? 0}`;
  }
  return undefined;
}

/** mlx5's per-VF sysfs config text. */
export function parseSriovConfig(vf: number, text: string): VfConfig {
  const field = (name: string): string | undefined =>
    new RegExp(`^\\s*${name}\\s*:\\s*(.+?)\\s*$`, 'mi').exec(text)?.[1];
  let mac: MacAddress;
  try {
    mac = parseMac(field('MAC') ?? '00:00:00:00:00:00');
  } catch {
    mac = parseMac('00:00:00:00:00:00');
  }
  const state = field('LinkState')?.toLowerCase();
  const onOff = (v: string | undefined): boolean | undefined =>
    v === undefined ? undefined : /^(on|1|true)$/i.test(v);
  const spoofchk = onOff(field('SpoofCheck'));
  const trust = onOff(field('Trust'));
  return {
    vf,
    mac,
    vlan: Number(field('VLAN') ?? 0),
    qos: Number(field('QoS') ?? 0),
    ...(field('VLAN Proto') === '802.1ad' ? { vlanProto: '802.1ad' as const } : {}),
    ...(spoofchk === undefined ? {} : { spoofchk }),
    ...(trust === undefined ? {} : { trust }),
    ...(state === 'auto' || state === 'enable' || state === 'disable' ? { linkState: state } : {}),
    minTxRate: Number(field('MinTxRate') ?? 0),
    maxTxRate: Number(field('MaxTxRate') ?? 0),
  };
}
