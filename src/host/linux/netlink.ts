import { PassthruError } from '../../conf/error.ts';
import { type MacAddress, ZERO_MAC } from '../../conf/mac.ts';
import type { VfConfig, VfSettings } from '../types.ts';
import { splitSettings } from '../vf-caps.ts';
import { type Rtnl, type VfDump, vfError } from './rtnl.ts';
import { decodePort, encodePort, type RawPort } from './vf-port.ts';

/**
 * rtnetlink through the `netlink` package (an optional dependency: its native part may fail to
 * load; then `openNetlinkRtnl` answers undefined and the caller uses iproute2). The package
 * leaves the VF structs as raw buffers; they are the kernel's fixed layouts from
 * include/uapi/linux/if_link.h, decoded here.
 */
export const RTEXT_FILTER_VF = 1 << 0;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/** The parsed VF entry as the package gives it (IFLA_VF_* attributes as raw structs). */
export interface RawVf {
  readonly mac?: Buffer;
  readonly vlan?: Buffer;
  readonly txRate?: Buffer;
  readonly spoofchk?: Buffer;
  readonly linkState?: Buffer;
  readonly rate?: Buffer;
  readonly trust?: Buffer;
  readonly vlanList?: Buffer;
}

const UNSUPPORTED = 0xffffffff;
const LINK_STATES = ['auto', 'enable', 'disable'] as const;

function macOf(b: Buffer): MacAddress {
  // struct ifla_vf_mac { __u32 vf; __u8 mac[32]; }: the Ethernet address is the first 6 bytes.
  return [...b.subarray(4, 10)].map((x) => x.toString(16).padStart(2, '0')).join(':') as MacAddress;
}

/** IFLA_VF_VLAN_LIST holds IFLA_VF_VLAN_INFO attributes: struct ifla_vf_vlan_info { __u32 vf,
 *  vlan, qos; __be16 vlan_proto; }. The first entry is the outer tag. */
function firstVlanInfo(list: Buffer): { vlan: number; qos: number; proto: number } | undefined {
  if (list.length < 4 + 14) return undefined;
  if (list.readUInt16LE(0) < 4 + 14) return undefined;
  return { vlan: list.readUInt32LE(8), qos: list.readUInt32LE(12), proto: list.readUInt16BE(16) };
}

export function decodeVf(v: RawVf): VfConfig | undefined {
  if (!v.mac || v.mac.length < 10) return undefined;
  const vf = v.mac.readUInt32LE(0);
  const list = v.vlanList ? firstVlanInfo(v.vlanList) : undefined;
  const vlan = list?.vlan ?? (v.vlan && v.vlan.length >= 12 ? v.vlan.readUInt32LE(4) : 0);
  const qos = list?.qos ?? (v.vlan && v.vlan.length >= 12 ? v.vlan.readUInt32LE(8) : 0);
  const setting = (b: Buffer | undefined): number | undefined =>
    b && b.length >= 8 && b.readUInt32LE(4) !== UNSUPPORTED ? b.readUInt32LE(4) : undefined;
  const spoofchk = setting(v.spoofchk);
  const trust = setting(v.trust);
  const link = setting(v.linkState);
  const linkState = link === undefined ? undefined : LINK_STATES[link];
  const rate = v.rate && v.rate.length >= 12 ? { min: v.rate.readUInt32LE(4), max: v.rate.readUInt32LE(8) } : undefined;
  const txRate = v.txRate && v.txRate.length >= 8 ? v.txRate.readUInt32LE(4) : 0;
  return {
    vf,
    mac: v.mac.subarray(4, 10).every((x) => x === 0) ? ZERO_MAC : macOf(v.mac),
    vlan,
    qos,
    ...(list?.proto === 0x88a8 ? { vlanProto: '802.1ad' as const } : {}),
    ...(spoofchk === undefined ? {} : { spoofchk: spoofchk !== 0 }),
    ...(trust === undefined ? {} : { trust: trust !== 0 }),
    ...(linkState === undefined ? {} : { linkState }),
    minTxRate: rate?.min ?? 0,
    maxTxRate: rate?.max ?? txRate,
  };
}

const u32s = (...values: number[]): Buffer => {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32LE(v >>> 0, i * 4));
  return b;
};

/** One IFLA_VF_INFO entry carrying one setting, in the kernel's struct layout. */
export function encodeVf(vf: number, s: VfSettings): Record<string, Buffer> {
  if (s.mac !== undefined) {
    const b = Buffer.alloc(36);
    b.writeUInt32LE(vf, 0);
    s.mac.split(':').forEach((h, i) => b.writeUInt8(Number.parseInt(h, 16), 4 + i));
    return { mac: b };
  }
  if (s.vlan !== undefined) {
    if (s.vlan.proto === '802.1ad') {
      // Only IFLA_VF_VLAN_LIST carries a protocol: one IFLA_VF_VLAN_INFO (type 1) attribute.
      // nla_len covers the whole struct (16 bytes with its tail padding): the kernel's policy
      // wants sizeof(struct ifla_vf_vlan_info) and answers EINVAL for less.
      const info = Buffer.alloc(4 + 16);
      info.writeUInt16LE(4 + 16, 0);
      info.writeUInt16LE(1, 2);
      info.writeUInt32LE(vf, 4);
      info.writeUInt32LE(s.vlan.id, 8);
      info.writeUInt32LE(s.vlan.qos ?? 0, 12);
      info.writeUInt16BE(0x88a8, 16);
      return { vlanList: info };
    }
    return { vlan: u32s(vf, s.vlan.id, s.vlan.qos ?? 0) };
  }
  if (s.rate !== undefined) return { rate: u32s(vf, s.rate.minTx, s.rate.maxTx) };
  if (s.spoofchk !== undefined) return { spoofchk: u32s(vf, s.spoofchk ? 1 : 0) };
  if (s.linkState !== undefined) return { linkState: u32s(vf, LINK_STATES.indexOf(s.linkState)) };
  if (s.trust !== undefined) return { trust: u32s(vf, s.trust ? 1 : 0) };
  throw new PassthruError('INTERNAL', 'encodeVf: no setting given');
}

interface LinkReply {
  readonly data: { readonly index?: number };
  readonly attrs: {
    readonly numVf?: number;
    readonly vfinfoList?: { readonly x?: readonly RawVf[] };
    readonly vfPorts?: { readonly x?: readonly RawPort[] };
  };
}

interface RtSocket {
  getLink(data: object, attrs: object): Promise<LinkReply[]>;
  setLink(data: object, attrs: object): Promise<unknown>;
  socket?: { close?: () => void };
}

/** The package rejects with Error('Request rejected: EOPNOTSUPP') (netlink.js checkError). */
export function errnoOf(err: unknown): string | undefined {
  const e = err as { code?: unknown };
  const raw =
    typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)
      ? e.code
      : /Request rejected: (E[A-Z0-9]+)/.exec(err instanceof Error ? err.message : String(err))?.[1];
  return raw === 'ENOTSUP' ? 'EOPNOTSUPP' : raw;
}

export async function openNetlinkRtnl(): Promise<Rtnl | undefined> {
  let socket: RtSocket;
  try {
    const mod = (await import('netlink')) as unknown as { createRtNetlink: () => RtSocket };
    socket = mod.createRtNetlink();
  } catch {
    return undefined;
  }
  const ext = u32s(RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
  const getLink = async (pfNetdev: string): Promise<LinkReply> => {
    try {
      const [reply] = await socket.getLink({ index: 0 }, { ifname: pfNetdev, extMask: ext });
      if (reply) return reply;
    } catch (err) {
      if (errnoOf(err) !== 'ENODEV') throw err;
    }
    throw new PassthruError('NO_DEVICE', `network device '${pfNetdev}' does not exist on this host`);
  };
  return {
    name: 'netlink',
    async readVfs(pfNetdev): Promise<VfDump> {
      const reply = await getLink(pfNetdev);
      const raw = reply.attrs.vfinfoList?.x ?? [];
      const vfs = raw.map(decodeVf).filter((v): v is VfConfig => v !== undefined);
      const numVf = reply.attrs.numVf;
      return { numVf, vfs: vfs.sort((a, b) => a.vf - b.vf), truncated: numVf !== undefined && vfs.length < numVf };
    },
    async setVf(pfNetdev, vf, settings) {
      const index = (await getLink(pfNetdev)).data.index ?? 0;
      for (const { what, one } of splitSettings(settings)) {
        try {
          await socket.setLink({ index }, { vfinfoList: { x: [encodeVf(vf, one)] } });
        } catch (err) {
          throw vfError(pfNetdev, vf, what, errnoOf(err), err instanceof Error ? err.message : String(err));
        }
      }
    },
    async setVfPort(pfNetdev, vf, profile, request) {
      const index = (await getLink(pfNetdev)).data.index ?? 0;
      try {
        await socket.setLink({ index }, { vfPorts: { x: [encodePort(vf, profile, request)] } });
      } catch (err) {
        const errno = errnoOf(err);
        throw new PassthruError(
          'HOST_FAILED',
          `cannot ${request} the port of VF ${vf} of PF ${pfNetdev}${errno === undefined ? '' : ` (${errno})`}`,
          errno === undefined ? { cause: err } : { errno, cause: err },
        );
      }
    },
    async readVfPorts(pfNetdev) {
      const reply = await getLink(pfNetdev);
      return (reply.attrs.vfPorts?.x ?? []).map(decodePort).filter((p) => p !== undefined);
    },
    close() {
      socket.socket?.close?.();
    },
  };
}
