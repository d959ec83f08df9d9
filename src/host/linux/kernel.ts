import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassthruError } from '../../conf/error.ts';
import { type MacAddress, parseMac } from '../../conf/mac.ts';
import type { PciAddress } from '../../conf/pci-address.ts';
import { DirSysfs } from '../sysfs.ts';
import type {
  DevicePresentation,
  Kernel,
  PortRequest,
  VfConfig,
  VfPortProfile,
  VfPortState,
  VfSettings,
} from '../types.ts';
import { ipRoute2, type Run, runProcess } from './iproute2.ts';
import { openNetlinkRtnl } from './netlink.ts';
import type { Rtnl, VfDump } from './rtnl.ts';

export interface LinuxOptions {
  /** The directory that plays '/' (tests); '/' on a host. */
  readonly root?: string;
  /** Force a rtnetlink implementation; by default the netlink package, else iproute2. */
  readonly rtnl?: Rtnl;
  readonly run?: Run;
}

export async function openLinuxHost(opts: LinuxOptions = {}): Promise<LinuxKernel> {
  const rtnl = opts.rtnl ?? (await openNetlinkRtnl()) ?? ipRoute2(opts.run ?? runProcess);
  return new LinuxKernel({ ...opts, rtnl });
}

/**
 * The real kernel: sysfs writes as single write(2) calls, VF attributes over rtnetlink (checked
 * and verified above it, in vf-apply.ts, for sim and linux alike), VF tables checked
 * for truncation against IFLA_NUM_VF and completed from sysfs where the driver exposes the
 * rows there (mlx5's device/sriov/<n>/config).
 */
export class LinuxKernel implements Kernel {
  readonly backend = 'linux' as const;
  readonly sysfs: DirSysfs;
  readonly rtnl: Rtnl;
  readonly #run: Run;

  constructor(opts: LinuxOptions & { readonly rtnl: Rtnl }) {
    this.sysfs = new DirSysfs(opts.root ?? '/');
    this.rtnl = opts.rtnl;
    this.#run = opts.run ?? runProcess;
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

  /** The plain rtnetlink write, one attribute per request; vf-apply.ts adds the driver
   *  checks, the quirks and the read-back. */
  async setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void> {
    await this.rtnl.setVf(pfNetdev, vf, settings);
  }

  /** 802.1Qbh goes to the PF's driver (ndo_set_vf_port; enic in mainline); 802.1Qbg goes to
   *  lldpad in libvirt, which passthru does not drive. */
  async setVfPort(pfNetdev: string, vf: number, profile: VfPortProfile, request: PortRequest): Promise<void> {
    if (profile.type === '802.1Qbg') {
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        `cannot ${request} VF ${vf} of PF ${pfNetdev} with an 802.1Qbg port profile: 802.1Qbg (VDP) goes through lldpad, which passthru does not drive on a linux host`,
      );
    }
    if (!this.rtnl.setVfPort) throw this.#noPorts(pfNetdev);
    await this.rtnl.setVfPort(pfNetdev, vf, profile, request);
  }

  async vfPortStatus(pfNetdev: string, vf: number): Promise<VfPortState | undefined> {
    if (!this.rtnl.readVfPorts) throw this.#noPorts(pfNetdev);
    const found = (await this.rtnl.readVfPorts(pfNetdev)).find((p) => p.vf === vf);
    if (found === undefined) return undefined;
    return {
      profile: found.profile,
      request: found.request,
      ...(found.response === undefined ? {} : { response: found.response }),
    };
  }

  #noPorts(pfNetdev: string): PassthruError {
    return new PassthruError(
      'CONFIG_UNSUPPORTED',
      `cannot handle port profiles on PF ${pfNetdev} with ${this.rtnl.name}: ip has no command for IFLA_VF_PORTS, and the netlink package did not load`,
    );
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
