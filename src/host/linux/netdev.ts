import { openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../../conf/error.ts';
import type { MacAddress } from '../../conf/mac.ts';
import { type HostNetdevs, type HostNicBackend, type HostNicRequest, type MacvtapMode, tapHostMac } from '../netdev.ts';
import { type Run, runProcess } from './iproute2.ts';
import { errnoOf } from './netlink.ts';

/** One host link as the netdev code needs it. */
export interface LinkInfo {
  readonly name: string;
  readonly index: number;
  /** IFLA_INFO_KIND: 'bridge', 'macvtap', 'tun', 'veth' ...; undefined for a plain NIC. */
  readonly kind?: string;
  readonly mtu?: number;
}

/** The link operations under plug/unplug: the `netlink` package, or iproute2 when it cannot load. */
export interface LinkOps {
  get(name: string): Promise<LinkInfo | undefined>;
  /** RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL: EEXIST when the name is taken. */
  addMacvtap(name: string, parent: LinkInfo, mode: MacvtapMode, mac: MacAddress): Promise<void>;
  set(name: string, s: { readonly master?: number; readonly mtu?: number; readonly mac?: MacAddress }): Promise<void>;
  del(name: string): Promise<void>;
  close?(): void;
}

// linux/if_link.h: enum macvlan_mode.
const MACVLAN_MODE: Record<MacvtapMode, number> = { private: 1, vepa: 2, bridge: 4, passthrough: 8 };
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_MACVLAN_MODE = 1;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

/** One netlink attribute (struct nlattr + payload, padded to 4 bytes). */
function nlattr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};

/** IFLA_LINKINFO of a macvtap (the package leaves this nest as raw bytes both ways). */
export function macvtapLinkinfo(mode: MacvtapMode): Buffer {
  return Buffer.concat([
    nlattr(IFLA_INFO_KIND, Buffer.from('macvtap\0')),
    nlattr(IFLA_INFO_DATA, nlattr(IFLA_MACVLAN_MODE, u32(MACVLAN_MODE[mode]))),
  ]);
}

/** IFLA_INFO_KIND out of a raw IFLA_LINKINFO nest. */
export function linkinfoKind(info: Buffer | undefined): string | undefined {
  for (let off = 0; info && off + 4 <= info.length; ) {
    const len = info.readUInt16LE(off);
    if (len < 4) return undefined;
    if (info.readUInt16LE(off + 2) === IFLA_INFO_KIND)
      return info.toString('latin1', off + 4, off + len).replace(/\0+$/, '');
    off += (len + 3) & ~3;
  }
  return undefined;
}

const macBytes = (mac: MacAddress): Buffer => Buffer.from(mac.split(':').map((h) => Number.parseInt(h, 16)));

interface LinkReply {
  readonly data: { readonly index?: number };
  readonly attrs: { readonly linkinfo?: Buffer; readonly mtu?: number };
}
interface RtLinkSocket {
  getLink(data: object, attrs: object): Promise<LinkReply[]>;
  newLink(data: object, attrs: object, options: object): Promise<unknown>;
  setLink(data: object, attrs: object): Promise<unknown>;
  delLink(data: object, attrs?: object): Promise<unknown>;
  socket?: { close?: () => void };
}

export async function netlinkLinkOps(): Promise<LinkOps | undefined> {
  let s: RtLinkSocket;
  try {
    const mod = (await import('netlink')) as unknown as { createRtNetlink: () => RtLinkSocket };
    s = mod.createRtNetlink();
  } catch {
    return undefined;
  }
  const get = async (name: string): Promise<LinkInfo | undefined> => {
    try {
      const [r] = await s.getLink({}, { ifname: name });
      if (r?.data.index === undefined) return undefined;
      const kind = linkinfoKind(r.attrs.linkinfo);
      return { name, index: r.data.index, ...(kind ? { kind } : {}), ...(r.attrs.mtu ? { mtu: r.attrs.mtu } : {}) };
    } catch (err) {
      if (errnoOf(err) === 'ENODEV') return undefined;
      throw err;
    }
  };
  const index = async (name: string): Promise<number> => {
    const l = await get(name);
    if (!l) throw new PassthruError('NO_DEVICE', `network device '${name}' does not exist on this host`);
    return l.index;
  };
  return {
    get,
    addMacvtap: (name, parent, mode, mac) =>
      hostCall(`create macvtap ${name} on ${parent.name}`, () =>
        s.newLink(
          {},
          { ifname: name, link: u32(parent.index), address: macBytes(mac), linkinfo: macvtapLinkinfo(mode) },
          { flags: NLM_F_CREATE | NLM_F_EXCL },
        ),
      ),
    set: async (name, v) => {
      const i = await index(name);
      await hostCall(`configure ${name}`, () =>
        s.setLink(
          { index: i, flags: { up: true }, change: { up: true } },
          {
            ...(v.mac ? { address: macBytes(v.mac) } : {}),
            ...(v.mtu ? { mtu: v.mtu } : {}),
            ...(v.master ? { master: v.master } : {}),
          },
        ),
      );
    },
    del: async (name) => {
      const l = await get(name);
      if (l) await hostCall(`remove ${name}`, () => s.delLink({ index: l.index }));
    },
    close: () => s.socket?.close?.(),
  };
}

async function hostCall(what: string, f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (err) {
    const errno = errnoOf(err) ?? errnoFromStderr(err);
    throw new PassthruError('HOST_FAILED', `cannot ${what}${errno ? ` (${errno})` : ''}`, {
      ...(errno ? { errno } : {}),
      cause: err,
    });
  }
}

function stderrOf(err: unknown): string {
  const text = (err as { stderr?: unknown }).stderr;
  return typeof text === 'string' ? text : '';
}

function errnoFromStderr(err: unknown): string | undefined {
  const text = stderrOf(err);
  if (text.includes('File exists')) return 'EEXIST';
  if (/Cannot find device|No such device|does not exist/.test(text)) return 'ENODEV';
  return undefined;
}

/** The same operations through `ip` (iproute2), for a host where the netlink package cannot load. */
export function ipLinkOps(run: Run = runProcess): LinkOps {
  const get = async (name: string): Promise<LinkInfo | undefined> => {
    try {
      const { stdout } = await run('ip', ['-j', '-d', 'link', 'show', 'dev', name]);
      const [l] = JSON.parse(stdout) as { ifindex: number; mtu?: number; linkinfo?: { info_kind?: string } }[];
      if (!l) return undefined;
      const kind = l.linkinfo?.info_kind;
      return { name, index: l.ifindex, ...(kind ? { kind } : {}), ...(l.mtu ? { mtu: l.mtu } : {}) };
    } catch (err) {
      if (errnoFromStderr(err) === 'ENODEV') return undefined;
      throw err;
    }
  };
  return {
    get,
    addMacvtap: async (name, parent, mode, mac) => {
      const p = parent.name;
      const args = ['link', 'add', 'link', p, 'name', name, 'address', mac, 'type', 'macvtap', 'mode', mode];
      await hostCall(`create macvtap ${name} on ${p}`, () => run('ip', args));
    },
    set: async (name, v) => {
      const args = ['link', 'set', 'dev', name];
      if (v.mac) args.push('address', v.mac);
      if (v.mtu) args.push('mtu', String(v.mtu));
      if (v.master) args.push('master', (await ifnameOf(run, v.master)) ?? String(v.master));
      args.push('up');
      await hostCall(`configure ${name}`, () => run('ip', args));
    },
    del: async (name) => {
      if (await get(name)) await hostCall(`remove ${name}`, () => run('ip', ['link', 'del', 'dev', name]));
    },
  };
}

async function ifnameOf(run: Run, index: number): Promise<string | undefined> {
  const { stdout } = await run('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifindex: number; ifname: string }[]).find((l) => l.ifindex === index)?.ifname;
}

/**
 * Taps and macvtaps on the real host. A tap cannot be made over netlink (it is /dev/net/tun's
 * TUNSETIFF ioctl, which Node cannot issue): `ip tuntap add` makes it persistent and QEMU opens
 * it by name. A macvtap is made over rtnetlink and QEMU gets an open descriptor of its
 * /dev/tapN, as libvirt gives it. Names are taken under one queue, so two starts never pick
 * the same `vnetN`.
 */
export class LinuxNetdevs implements HostNetdevs {
  readonly backend = 'linux' as const;
  readonly #links: LinkOps;
  readonly #run: Run;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(links: LinkOps, run: Run = runProcess) {
    this.#links = links;
    this.#run = run;
  }

  static async open(run: Run = runProcess): Promise<LinuxNetdevs> {
    return new LinuxNetdevs((await netlinkLinkOps()) ?? ipLinkOps(run), run);
  }

  async check(req: HostNicRequest): Promise<void> {
    await this.#lower(req);
  }

  /** The bridge (a link of kind bridge) or the macvtap's parent; NO_DEVICE when missing. */
  async #lower(req: HostNicRequest): Promise<LinkInfo> {
    const name = req.kind === 'tap' ? req.bridge : req.parent;
    const link = await this.#links.get(name);
    if (req.kind === 'tap') {
      if (!link)
        throw new PassthruError('NO_DEVICE', `bridge '${name}' does not exist on this host`, {
          hint: 'create it (ip link add NAME type bridge) or name an existing one in <source bridge>',
        });
      if (link.kind !== 'bridge')
        throw new PassthruError('NO_DEVICE', `network device '${name}' is not a bridge`, {
          hint: "<interface type='bridge'> needs a Linux bridge in <source bridge>",
        });
    } else if (!link) {
      throw new PassthruError('NO_DEVICE', `parent network device '${name}' of a macvtap does not exist on this host`, {
        hint: "name an existing host netdev in <source dev> of <interface type='direct'>",
      });
    }
    return link;
  }

  plug(req: HostNicRequest): Promise<HostNicBackend> {
    const next = this.#queue.then(() => this.#plug(req));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #plug(req: HostNicRequest): Promise<HostNicBackend> {
    const lower = await this.#lower(req);
    const name = req.name ?? (await this.#freeName(req.kind === 'tap' ? 'vnet' : 'macvtap'));
    if (await this.#links.get(name)) {
      throw new PassthruError('DEVICE_IN_USE', `network device '${name}' (<target dev>) already exists on this host`);
    }
    if (req.kind === 'tap') {
      const owner = req.owner ? ['user', String(req.owner.uid), 'group', String(req.owner.gid)] : [];
      await hostCall(`create tap ${name}`, () =>
        this.#run('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap', ...owner]),
      );
      try {
        const mtu = req.mtu ?? lower.mtu;
        await this.#links.set(name, { mac: tapHostMac(req.mac), master: lower.index, ...(mtu ? { mtu } : {}) });
      } catch (err) {
        await this.unplug(name).catch(() => undefined);
        throw err;
      }
      return { kind: 'tap', name };
    }
    await this.#links.addMacvtap(name, lower, req.mode, req.mac);
    try {
      await this.#links.set(name, req.mtu ? { mtu: req.mtu } : {});
      const link = await this.#links.get(name);
      if (!link) throw new PassthruError('HOST_FAILED', `macvtap ${name} vanished after it was made`);
      return { kind: 'tap', name, fd: await openTapDevice(link.index, name) };
    } catch (err) {
      await this.unplug(name).catch(() => undefined);
      throw err;
    }
  }

  async unplug(name: string): Promise<void> {
    await this.#links.del(name);
  }

  async #freeName(prefix: string): Promise<string> {
    for (let n = 0; ; n++) if (!(await this.#links.get(`${prefix}${n}`))) return `${prefix}${n}`;
  }
}

/** A macvtap's character device is /dev/tap<ifindex>; devtmpfs (or udev) makes it a moment
 *  after the link, so a few tries, as libvirt's virNetDevMacVLanTapOpen does. */
async function openTapDevice(ifindex: number, name: string): Promise<number> {
  const path = `/dev/tap${ifindex}`;
  for (let attempt = 0; ; attempt++) {
    try {
      return openSync(path, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 20) {
        throw new PassthruError('HOST_FAILED', `cannot open ${path} of macvtap ${name}: ${(err as Error).message}`);
      }
      await sleep(50);
    }
  }
}
