import { closeSync, type FSWatcher, fstatSync, openSync, readSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import {
  compareAddress,
  functionOfPath,
  type Inventory,
  type PciDevice,
  readInventory,
  refreshInventory,
} from './inventory.ts';
import { CHANGE_LOG } from './sim/tree.ts';
import type { Kernel } from './types.ts';

/**
 * Following the host as it changes (VFs created or destroyed, drivers rebound, netdevs coming
 * and going) without a restart. The trigger depends on the backend: the sim rewrites
 * `<dir>/sim/host.json` on every kernel operation, from any process, so an inotify watch on
 * that directory sees them all; on linux the kernel's link events come through rtnetlink (when
 * the netlink package loads) and a slow poll catches what has no event (a PCI driver rebind of
 * a function without netdev). Either way the inventory is re-read and diffed, so the events
 * say what changed, not just that something did. Where the host says which functions changed
 * (a uevent's devpath, the sim's change log) only those are read again (refreshInventory), at
 * once; a change without names (a link event, the poll) reads everything after a short quiet.
 */
export interface HostChange {
  readonly kind: 'added' | 'removed' | 'changed';
  readonly address: PciAddress;
  readonly name: string;
  /** For 'changed': which facts moved (driver, netdevs, numVfs, iommuGroup, driverOverride). */
  readonly fields?: readonly string[];
}

/** What changed between two inventories, in address order. Both are sorted by address, so one
 *  walk pairs them up; a device that is the same object in both was not read again
 *  (refreshInventory) and is passed over. */
export function diffInventory(before: Inventory, after: Inventory): HostChange[] {
  const out: HostChange[] = [];
  const a = before.devices;
  const b = after.devices;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const o = a[i];
    const d = b[j];
    if (o !== undefined && o.name === d?.name) {
      i++;
      j++;
      if (o === d) continue;
      const fields = changedFields(o, d);
      if (fields.length > 0) out.push({ kind: 'changed', address: d.address, name: d.name, fields });
    } else if (d !== undefined && (o === undefined || compareAddress(d.address, o.address) < 0)) {
      j++;
      out.push({ kind: 'added', address: d.address, name: d.name });
    } else if (o !== undefined) {
      i++;
      out.push({ kind: 'removed', address: o.address, name: o.name });
    }
  }
  return out;
}

function changedFields(a: PciDevice, b: PciDevice): string[] {
  const f: string[] = [];
  if (a.driver !== b.driver) f.push('driver');
  if (a.driverOverride !== b.driverOverride) f.push('driverOverride');
  if (a.iommuGroup !== b.iommuGroup) f.push('iommuGroup');
  if ((a.sriov?.numVfs ?? 0) !== (b.sriov?.numVfs ?? 0)) f.push('numVfs');
  const nd = (d: PciDevice): string => d.netdevs.map((n) => `${n.name}=${n.mac ?? ''}/${n.operstate ?? ''}`).join(',');
  if (nd(a) !== nd(b)) f.push('netdevs');
  return f;
}

export interface WatchOptions {
  /** How often to re-read when no event came (default 5 s on linux, 10 s on the sim). */
  readonly pollMs?: number;
  /** Events arrive in bursts (a VF count change is dozens of writes): wait this long for quiet. */
  readonly debounceMs?: number;
}

export interface HostWatcher {
  /** The inventory as last read. */
  current(): Inventory;
  /** Reads the host now (a read that starts after this call) and resolves once its changes have
   *  been reported, or after `maxMs` if the host keeps changing under the read. Whoever changed
   *  the host calls it before saying so: the watcher's next diff then starts from the state the
   *  caller reported, not from an older one. Without it, a state that lasted less than the
   *  debounce (the daemon sets 8 VFs, someone else sets 0 right after) was never read, both
   *  reads showed 0 VFs, and the 8 removals were never reported. */
  sync(maxMs?: number): Promise<void>;
  /** The inventory as the host is now, as cheaply as the backend allows: on the sim the change
   *  log names what moved since the last read, so only those functions are read again; on linux
   *  the answer comes from what the uevents and link events have brought in (as libvirt's
   *  node-device driver answers from its udev cache), and everything is read again only when
   *  those event sources are not there. */
  fresh(): Promise<Inventory>;
  stop(): void;
}

export async function watchHost(
  kernel: Kernel,
  onChange: (changes: readonly HostChange[], inventory: Inventory) => void,
  opts: WatchOptions = {},
): Promise<HostWatcher> {
  const log = kernel.backend === 'sim' ? new ChangeLog(join(kernel.sysfs.root, 'sim', CHANGE_LOG)) : undefined;
  let inv = await readInventory(kernel.sysfs);
  let timer: NodeJS.Timeout | undefined;
  let due = Number.POSITIVE_INFINITY;
  let running = false;
  let again = false;
  let stopped = false;
  let failures = 0;
  // What the next read covers: the functions named so far, or everything.
  let pending: Set<string> | 'all' = new Set();
  const want = (names: Iterable<string> | 'all'): void => {
    if (pending === 'all') return;
    if (names === 'all') pending = 'all';
    else for (const n of names) pending.add(n);
  };
  const take = (): Set<string> | 'all' => {
    if (log) want(log.drain());
    const what = pending;
    pending = new Set();
    return what;
  };
  // Reads are numbered as they start; sync() waits for a read numbered after its call to end.
  let started = 0;
  let waiters: { readonly after: number; readonly resolve: () => void }[] = [];
  const settle = (finished: number): void => {
    const due = waiters.filter((w) => w.after < finished || stopped);
    waiters = waiters.filter((w) => !due.includes(w));
    for (const w of due) w.resolve();
  };
  const refresh = async (): Promise<void> => {
    clearTimeout(timer);
    due = Number.POSITIVE_INFINITY;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let what: Set<string> | 'all' = new Set();
    try {
      do {
        again = false;
        const n = ++started;
        what = take();
        const next =
          what === 'all'
            ? await readInventory(kernel.sysfs)
            : what.size === 0
              ? inv
              : await refreshInventory(kernel.sysfs, inv, what);
        const changes = diffInventory(inv, next);
        inv = next;
        failures = 0;
        if (changes.length > 0 && !stopped) onChange(changes, next);
        settle(n);
      } while (again && !stopped);
    } catch {
      // The host changed under the read (a VF vanished mid-read). The change that did it may
      // have signalled while this read ran, so nothing else will come: read again, backing off
      // while the failures go on.
      want(what);
      failures++;
      if (!stopped) schedule(Math.min(5000, 50 * 2 ** failures));
    } finally {
      running = false;
    }
  };
  /** Runs a read in `ms`, or sooner if one is due sooner. */
  const schedule = (ms: number): void => {
    if (stopped || Date.now() + ms >= due) return;
    clearTimeout(timer);
    due = Date.now() + ms;
    timer = setTimeout(() => void refresh(), ms);
  };
  /** Something changed: read the named functions at once, or everything after a quiet spell
   *  (events without names come in bursts: a VF count change is dozens of them). */
  const poke = (names: Iterable<string> | 'all'): void => {
    want(names);
    schedule(names === 'all' ? (opts.debounceMs ?? 50) : 0);
  };
  const stops: (() => void)[] = [];
  // Whether every change is announced (the sim's change log; on linux both uevents and link
  // events): only then can the last read stand for the host without reading it again.
  let announced = log !== undefined;
  // Events say when to look; a slow poll is the floor under them. inotify can drop events (its
  // queue overflows on a loaded host; CI saw a sim change go unnoticed), and on linux some
  // changes have no event at all. On the sim the change log names every change, so the poll
  // reads the log, not the host: a full read of 4096 VFs every 10 s held the event loop for
  // seconds on a loaded machine (the sim's reads are synchronous) and stretched whatever the
  // daemon was doing then (a device-manager step took 10-60 s).
  const poll = setInterval(
    () => {
      poke(log ? [] : 'all');
    },
    opts.pollMs ?? (kernel.backend === 'sim' ? 10_000 : 5000),
  );
  poll.unref();
  stops.push(() => {
    clearInterval(poll);
  });
  if (log) {
    // Every changing operation appends the functions it touched to the change log, then
    // rewrites sim/generation (reads only take the lock).
    const w: FSWatcher = watch(join(kernel.sysfs.root, 'sim'), (_event, file) => {
      if (file === 'generation' || file === null) poke([]);
    });
    stops.push(() => {
      w.close();
    });
  } else {
    const unsub = await linkEvents(() => {
      poke('all');
    });
    if (unsub) stops.push(unsub);
    // PCI functions appearing and drivers binding have no link event: the kernel's uevents,
    // whose devpath names the function.
    const unsubUevents = await pciUevents((devpath) => {
      const name = functionOfPath(devpath);
      poke(name === undefined ? 'all' : [name]);
    });
    if (unsubUevents) stops.push(unsubUevents);
    announced = unsub !== undefined && unsubUevents !== undefined;
  }
  /** Resolves once a read that starts after this call has ended (or after `maxMs`). */
  const readAfter = (maxMs: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const cap = setTimeout(resolve, maxMs);
      waiters.push({
        after: started,
        resolve: () => {
          clearTimeout(cap);
          resolve();
        },
      });
      void refresh();
    });
  return {
    current: () => inv,
    sync(maxMs = 5000) {
      if (stopped) return Promise.resolve();
      // The sim's change log names what the caller changed; linux's uevents may still be on
      // their way, so there a sync reads everything.
      if (!log) want('all');
      return readAfter(maxMs);
    },
    async fresh() {
      if (stopped || !announced) return readInventory(kernel.sysfs);
      // A read already asked for (an event in its debounce) is done now rather than later.
      if (log || running || pending === 'all' || pending.size > 0 || Number.isFinite(due)) await readAfter(5000);
      return inv;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      for (const s of stops) s();
      settle(started);
    },
  };
}

/** The sim's change log, read from where the last read stopped. A log that shrank (a new sim
 *  tree in the same place) or cannot be read means everything may have changed. */
class ChangeLog {
  readonly #path: string;
  #offset: number;
  #partial = '';

  constructor(path: string) {
    this.#path = path;
    this.#offset = size(path);
  }

  drain(): Set<string> | 'all' {
    let fd: number | undefined;
    try {
      fd = openSync(this.#path, 'r');
      const end = fstatSync(fd).size;
      if (end < this.#offset) {
        this.#offset = end;
        this.#partial = '';
        return 'all';
      }
      const buf = Buffer.alloc(end - this.#offset);
      const got = buf.length === 0 ? 0 : readSync(fd, buf, 0, buf.length, this.#offset);
      this.#offset += got;
      const text = this.#partial + buf.subarray(0, got).toString('utf8');
      const cut = text.lastIndexOf('\n');
      this.#partial = text.slice(cut + 1);
      return new Set(
        text
          .slice(0, cut + 1)
          .split(/\s+/)
          .filter((n) => n !== ''),
      );
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? new Set() : 'all';
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

function size(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** rtnetlink RTNLGRP_LINK: netdevs appearing, vanishing, changing; undefined without the package. */
async function linkEvents(onEvent: () => void): Promise<(() => void) | undefined> {
  try {
    const mod = (await import('netlink')) as unknown as {
      createRtNetlink: () => {
        addMembership(group: string): void;
        on(ev: 'message', fn: () => void): void;
        socket?: { close?: () => void; unref?: () => void };
      };
    };
    const s = mod.createRtNetlink();
    s.addMembership('LINK');
    s.on('message', onEvent);
    s.socket?.unref?.();
    return () => s.socket?.close?.();
  } catch {
    return undefined;
  }
}

export interface Uevent {
  readonly action: string;
  readonly devpath: string;
  readonly subsystem: string | undefined;
  readonly vars: Readonly<Record<string, string>>;
}

/** A kernel uevent datagram: "ACTION@DEVPATH\0KEY=VALUE\0..." (lib/kobject_uevent.c). */
export function parseUevent(msg: Buffer): Uevent | undefined {
  const parts = msg
    .toString('utf8')
    .split('\0')
    .filter((p) => p !== '');
  const head = parts[0];
  const at = head?.indexOf('@') ?? -1;
  if (head === undefined || at <= 0) return undefined; // udev's re-broadcasts start "libudev"
  const vars: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq > 0) vars[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return { action: head.slice(0, at), devpath: head.slice(at + 1), subsystem: vars['SUBSYSTEM'], vars };
}

const NETLINK_KOBJECT_UEVENT = 15;

/** NETLINK_KOBJECT_UEVENT group 1, filtered to PCI and net: add, remove, bind, unbind, change. */
async function pciUevents(onEvent: (devpath: string) => void): Promise<(() => void) | undefined> {
  try {
    const mod = (await import('netlink')) as unknown as {
      RawNetlinkSocket: new (
        protocol: number,
      ) => {
        addMembership(group: number): void;
        on(ev: 'message', fn: (msg: Buffer) => void): void;
        on(ev: 'error', fn: () => void): void;
        unref(): void;
        close(): void;
      };
    };
    const s = new mod.RawNetlinkSocket(NETLINK_KOBJECT_UEVENT);
    s.addMembership(1);
    s.on('message', (msg) => {
      const ev = parseUevent(msg);
      if (ev && (ev.subsystem === 'pci' || ev.subsystem === 'net')) onEvent(ev.devpath);
    });
    s.on('error', () => undefined);
    s.unref();
    return () => {
      s.close();
    };
  } catch {
    return undefined;
  }
}

export function describeChange(c: HostChange): string {
  const what = c.kind === 'changed' ? ` (${(c.fields ?? []).join(', ')})` : '';
  return `PCI device ${formatPciAddress(c.address)} ${c.kind}${what}`;
}
