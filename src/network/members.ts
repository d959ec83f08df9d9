import { PassthruError } from '../conf/error.ts';
import type { SelectableDevice } from '../conf/network/select.ts';
import { selectorMatches } from '../conf/network/select.ts';
import type { DeviceSelector, NetworkDef } from '../conf/network/types.ts';
import { formatPciAddress, type PciAddress } from '../conf/pci-address.ts';
import type { DevicePoolDef } from '../conf/pool/types.ts';
import type { Inventory, PciDevice } from '../host/inventory.ts';

/**
 * One device of a pool as the host shows it now. Pools are resolved against the current
 * inventory every time they are looked at, so a `<pf dev>` pool follows the PF's VF count and a
 * selector pool follows driver and NUMA changes without being told.
 */
export interface Member {
  readonly address: PciAddress;
  /** "0000:06:02.0": the key of leases, allocations and quarantine. */
  readonly bdf: string;
  /** False for an explicit `<address>` the host does not have (now): never handed out. */
  readonly present: boolean;
  readonly driver?: string;
  readonly numaNode?: number;
  /** For a VF: its PF and its index there, which order the pool. */
  readonly vf?: { readonly pf: PciAddress; readonly pfNetdev?: string; readonly index: number };
  readonly tags: readonly string[];
}

/** What a selector and the health check look at, for every function of the host. */
export interface HostView {
  readonly byBdf: {
    get(bdf: string): PciDevice | undefined;
    [Symbol.iterator](): Iterator<[string, PciDevice]>;
  };
  readonly selectable: readonly SelectableDevice[];
  /** PF netdev name -> PF. */
  readonly pfByNetdev: ReadonlyMap<string, PciDevice>;
  /** Set when this view is `prev` with a few functions read again (a driver bound, a MAC set):
   *  members resolved on `prev` are patched for those instead of resolved again over the whole
   *  host (which, on 4096 VFs, cost more than the allocation). */
  readonly patch?: { readonly prev: HostView; readonly names: readonly string[] };
}

/** The functions of an inventory by name, kept with their position so a view built from the next
 *  inventory (the same functions in the same places) shares the index instead of copying it. */
class Functions {
  readonly list: readonly PciDevice[];
  readonly at: ReadonlyMap<string, number>;
  constructor(list: readonly PciDevice[], at: ReadonlyMap<string, number>) {
    this.list = list;
    this.at = at;
  }
  get(bdf: string): PciDevice | undefined {
    const i = this.at.get(bdf);
    return i === undefined ? undefined : this.list[i];
  }
  *[Symbol.iterator](): Iterator<[string, PciDevice]> {
    for (const d of this.list) yield [d.name, d];
  }
}

/** The netdev that carries a PF's traffic (not a switchdev representor), lowest port first. */
export function uplinkOf(pf: PciDevice): string | undefined {
  return [...pf.netdevs].filter((n) => !n.representor).sort((a, b) => a.devPort - b.devPort)[0]?.name;
}

export function hostView(inv: Inventory): HostView {
  const byBdf = new Functions(inv.devices, new Map(inv.devices.map((d, i) => [d.name, i])));
  const pfByNetdev = new Map<string, PciDevice>();
  for (const d of inv.devices) if (d.sriov) for (const n of d.netdevs) if (!n.representor) pfByNetdev.set(n.name, d);
  const selectable = inv.devices.map((d) => selectable1(byBdf, d));
  return { byBdf, selectable, pfByNetdev };
}

function selectable1(byBdf: Functions, d: PciDevice): SelectableDevice {
  const pf = d.physfn ? byBdf.get(formatPciAddress(d.physfn.pf)) : undefined;
  const pfNetdev = pf && uplinkOf(pf);
  return {
    address: d.address,
    vendor: d.vendor,
    device: d.device,
    ...(d.driver === undefined ? {} : { driver: d.driver }),
    ...(d.numaNode === undefined ? {} : { numaNode: d.numaNode }),
    ...(d.physfn
      ? { pfAddress: formatPciAddress(d.physfn.pf), vfIndex: d.physfn.index, ...(pfNetdev ? { pf: pfNetdev } : {}) }
      : {}),
  };
}

/**
 * The view of `inv`, built from `prev` when `inv` is the inventory `prev` was built from with a
 * few functions read again (the watcher's refresh keeps every other function's object): those
 * are found by identity, which costs a pointer comparison per function instead of the whole
 * view. A function that came or went, or a PF that changed (its VF list, its netdevs), builds
 * the view anew.
 */
export function nextView(prev: HostView | undefined, inv: Inventory): HostView {
  const fns = prev?.byBdf;
  if (!prev || !(fns instanceof Functions) || fns.list.length !== inv.devices.length) return hostView(inv);
  const names: string[] = [];
  const changed: number[] = [];
  let whole = false;
  inv.devices.forEach((d, i) => {
    const old = fns.list[i];
    if (d === old) return;
    if (d.name !== old?.name || d.sriov || old.sriov) whole = true;
    names.push(d.name);
    changed.push(i);
  });
  if (whole) return hostView(inv);
  if (names.length === 0) return prev;
  const byBdf = new Functions(inv.devices, fns.at);
  const selectable = prev.selectable.slice();
  for (const i of changed) {
    const d = inv.devices[i];
    if (d) selectable[i] = selectable1(byBdf, d);
  }
  return { byBdf, selectable, pfByNetdev: prev.pfByNetdev, patch: { prev, names } };
}

/**
 * The members of a pool after the functions `names` were read again, from its members before
 * (in allocation order): each changed function is resolved alone and put in its place. Undefined
 * when the change moved membership (a function that a selector takes or drops now): then the
 * caller resolves the pool again.
 */
export function patchMembers(
  before: readonly Member[],
  at: ReadonlyMap<string, number>,
  view: HostView,
  names: readonly string[],
  resolve: (narrow: HostView) => Member[],
): Member[] | undefined {
  const fns = view.byBdf;
  if (!(fns instanceof Functions)) return undefined;
  // A view whose selectors see only the changed functions: a selector pool resolves just
  // those; a `<pf>` or `<address>` pool resolves its own list, which does not depend on them.
  const narrow: HostView = {
    ...view,
    selectable: names.flatMap((n) => {
      const d = view.selectable[fns.at.get(n) ?? -1];
      return d ? [d] : [];
    }),
  };
  const now = new Map(resolve(narrow).map((m) => [m.bdf, m]));
  const out = before.slice();
  for (const n of names) {
    const i = at.get(n);
    const m = now.get(n);
    if ((i === undefined) !== (m === undefined)) return undefined;
    if (i !== undefined && m !== undefined) out[i] = m;
  }
  return out;
}

function member(view: HostView, address: PciAddress, tags: readonly string[] = []): Member {
  const bdf = formatPciAddress(address);
  const d = view.byBdf.get(bdf);
  if (!d) return { address, bdf, present: false, tags };
  const pf = d.physfn ? view.byBdf.get(formatPciAddress(d.physfn.pf)) : undefined;
  const pfNetdev = pf && uplinkOf(pf);
  return {
    address,
    bdf,
    present: true,
    ...(d.driver === undefined ? {} : { driver: d.driver }),
    ...(d.numaNode === undefined ? {} : { numaNode: d.numaNode }),
    ...(d.physfn
      ? { vf: { pf: d.physfn.pf, index: d.physfn.index, ...(pfNetdev === undefined ? {} : { pfNetdev }) } }
      : {}),
    tags,
  };
}

/** Selector members, with the tags of every selector that took them, once each. */
function selected(view: HostView, selectors: readonly DeviceSelector[], onlyVfs: boolean): Member[] {
  const out: Member[] = [];
  for (const d of view.selectable) {
    if (onlyVfs && d.vfIndex === undefined) continue;
    const hits = selectors.filter((s) => selectorMatches(s, d));
    if (hits.length > 0) out.push(member(view, d.address, [...new Set(hits.flatMap((s) => s.tags ?? []))]));
  }
  return out;
}

/**
 * The VFs of a hostdev network on this host, checked as libvirt's network start checks them:
 * a `<pf dev>` must be an SR-IOV PF (all its VFs, however many it has now); each listed
 * `<address>` must be a VF. Selectors in a network take VFs only (a vendor selector would
 * otherwise take the PF too).
 */
export function networkMembers(net: NetworkDef, view: HostView): Member[] {
  const f = net.forward;
  if (!f || (f.mode !== 'hostdev' && f.mode !== 'hostdev-hybrid')) {
    throw new PassthruError(
      'CONFIG_UNSUPPORTED',
      `network '${net.name}' has forward mode '${f?.mode ?? 'none'}': passthrud runs hostdev networks only`,
      { hint: "use <forward mode='hostdev'>" },
    );
  }
  const pf = f.pfs[0];
  if (pf) {
    const dev = view.pfByNetdev.get(pf.dev);
    if (!dev?.sriov) {
      throw new PassthruError('NO_DEVICE', `Could not get Virtual functions on ${pf.dev}`, {
        hint: `the host has no SR-IOV PF with netdev '${pf.dev}'`,
        ...(pf.line === undefined ? {} : { line: pf.line }),
      });
    }
    return dev.sriov.vfs.filter(Boolean).map((a) => member(view, a));
  }
  if (f.selectors.length > 0) return sorted(selected(view, f.selectors, true));
  return f.addresses.map((a) => {
    const m = member(view, a);
    if (!m.vf) {
      throw new PassthruError(
        'DEVICE_NOT_ASSIGNABLE',
        `device '${m.bdf}' in network '${net.name}' is not an SR-IOV Virtual Function`,
        {
          ...(a.line === undefined ? {} : { line: a.line }),
          ...(m.present ? {} : { hint: 'the host has no such PCI device' }),
        },
      );
    }
    return m;
  });
}

/** The members of a device pool: selector matches and listed addresses (an absent listed device
 *  stays a member that is never healthy, so it shows in the pool's info). */
export function devicePoolMembers(pool: DevicePoolDef, view: HostView): Member[] {
  const bySelector = selected(view, pool.selectors, false);
  const seen = new Map(bySelector.map((m) => [m.bdf, m]));
  for (const a of pool.addresses) {
    const bdf = formatPciAddress(a);
    const prev = seen.get(bdf);
    const tags = [...new Set([...(prev?.tags ?? []), ...(a.tags ?? [])])];
    seen.set(bdf, member(view, a, tags));
  }
  return sorted([...seen.values()]);
}

/** Allocation order: VFs by PF address then VF index, other devices by their own address. */
export function memberOrder(a: Member, b: Member): number {
  return compareAddress(a.vf?.pf ?? a.address, b.vf?.pf ?? b.address) || (a.vf?.index ?? -1) - (b.vf?.index ?? -1);
}

function compareAddress(a: PciAddress, b: PciAddress): number {
  return a.domain - b.domain || a.bus - b.bus || a.slot - b.slot || a.function - b.function;
}

function sorted(ms: Member[]): Member[] {
  return ms.sort(memberOrder);
}
