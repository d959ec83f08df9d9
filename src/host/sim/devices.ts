import { basename, dirname } from 'node:path';
import { type MacAddress, ZERO_MAC } from '../../conf/mac.ts';
import { parsePciAddress } from '../../conf/pci-address.ts';
import { buildConfigSpace } from './config-space.ts';
import { simDriver } from './drivers.ts';
import { addDisks, carriesRoute, removeDisks, writeRoutes } from './host-files.ts';
import type { ProfileSriov } from './profile.ts';
import { freshMac, type NetlinkTable, readNetlink, type SimHostState, type VfRow } from './state.ts';
import { placedByAddress, type PlacedDevice, vfAddress } from './topology.ts';
import {
  addNetdev,
  addPciDevice,
  attachDriver,
  BUS_DEVICES,
  bdf,
  CLASS_NET,
  DEV_VFIO,
  detachDriver,
  deviceDir,
  DRIVERS,
  driverOf,
  exists,
  iommuGroupOf,
  link,
  list,
  lowestFree,
  readAttr,
  removeNetdevs,
  removePciDevice,
  resolveLink,
  unlink,
  writeAttr,
} from './tree.ts';

/**
 * The simulated kernel's device-level effects (what a driver's probe and remove do, what
 * SR-IOV enable and disable do), shared by `createSimHost` (boot) and `SimKernel` (writes).
 * One Ctx per operation: it carries the state read from disk and collects what must be
 * written back.
 */
export interface Ctx {
  readonly root: string;
  readonly state: SimHostState;
  readonly placed: Map<string, PlacedDevice>;
  /** VF tables touched by this operation, keyed by "<PF BDF>/<port>". */
  readonly tables: Map<string, NetlinkTable>;
  /** Keys of the tables this operation changed: only those are written back. */
  readonly dirty: Set<string>;
  usedGroups: Set<number> | undefined;
}

export function putTable(ctx: Ctx, t: NetlinkTable): void {
  const key = `${t.pf}/${t.port}`;
  ctx.tables.set(key, t);
  ctx.dirty.add(key);
}

export function newCtx(root: string, state: SimHostState): Ctx {
  return {
    root,
    state,
    placed: placedByAddress(state.profile),
    tables: new Map(),
    dirty: new Set(),
    usedGroups: undefined,
  };
}

/** The kernel's IDA: the lowest free IOMMU group number (the used set listed once per op). */
function nextGroup(ctx: Ctx): number {
  ctx.usedGroups ??= new Set(list(ctx.root, 'sys/kernel/iommu_groups').map(Number));
  const n = lowestFree(ctx.usedGroups);
  ctx.usedGroups.add(n);
  return n;
}

/** A PF's VF table for one of its ports (mlx4 keeps one per PF netdev; others have port 0). */
export function table(ctx: Ctx, pf: string, port = 0): NetlinkTable {
  let t = ctx.tables.get(`${pf}/${port}`);
  if (!t) {
    t = readNetlink(ctx.root, pf, port);
    ctx.tables.set(`${pf}/${port}`, t);
  }
  return t;
}

/** The dev_ports of a PF's uplink netdevs per its profile: [0], or [0, 1] on a dual-port PF. */
export function pfPorts(ctx: Ctx, pf: string): number[] {
  const ports = new Set((ctx.placed.get(pf)?.spec.netdevs ?? []).map((n) => n.devPort ?? 0));
  return ports.size === 0 ? [0] : [...ports].sort((a, b) => a - b);
}

/** The PF BDF and VF index of a VF, from its physfn link and the PF's virtfnN links. */
export function vfIdentity(ctx: Ctx, address: string): { pf: string; index: number } | undefined {
  const pfDir = resolveLink(ctx.root, `${BUS_DEVICES}/${address}/physfn`);
  if (pfDir === undefined) return undefined;
  const pf = basename(pfDir);
  // The routing-ID arithmetic names the candidate link; the link itself has the last word.
  const sriov = pfSriov(ctx, pf);
  if (sriov) {
    const rid = (a: string): number => {
      const p = parsePciAddress(a);
      return (p.bus << 8) | (p.slot << 3) | p.function;
    };
    const i = (rid(address) - rid(pf) - sriov.offset) / sriov.stride;
    if (
      Number.isInteger(i) &&
      i >= 0 &&
      basename(resolveLink(ctx.root, `${BUS_DEVICES}/${pf}/virtfn${i}`) ?? '') === address
    ) {
      return { pf, index: i };
    }
  }
  for (const name of list(ctx.root, `${BUS_DEVICES}/${pf}`)) {
    const m = /^virtfn(\d+)$/.exec(name);
    if (m && basename(resolveLink(ctx.root, `${BUS_DEVICES}/${pf}/${name}`) ?? '') === address) {
      return { pf, index: Number(m[1]) };
    }
  }
  return undefined;
}

/** The driver whose id table matches the device (what drivers_probe binds without override). */
export function nativeDriver(ctx: Ctx, address: string): string | undefined {
  const vf = vfIdentity(ctx, address);
  if (vf) return ctx.placed.get(vf.pf)?.spec.sriov?.vfDriver;
  return ctx.placed.get(address)?.spec.driver;
}

function pfSriov(ctx: Ctx, pf: string): ProfileSriov | undefined {
  return ctx.placed.get(pf)?.spec.sriov;
}

/** A driver's probe: the link, then what the driver creates (netdevs, the vfio group node). */
export function bindDevice(ctx: Ctx, address: string, driverName: string): void {
  const dir = deviceDir(ctx.root, address);
  if (dir === undefined) return;
  attachDriver(ctx.root, address, driverName);
  const driver = simDriver(driverName);
  if (driver.vfio) {
    const group = iommuGroupOf(ctx.root, address);
    writeAttr(ctx.root, `${DEV_VFIO}/vfio`, '', 0o666);
    if (group !== undefined) writeAttr(ctx.root, `${DEV_VFIO}/${group}`, '', 0o600);
    writeAttr(ctx.root, `${dir}/vfio-dev/vfio${group ?? 0}/dev`, `511:${group ?? 0}`, 0o444);
  }
  if (driver.net) createNetdevs(ctx, address, dir);
  if (!driver.vfio) addDisks(ctx, address, dir);
  if (driver.net && carriesRoute(ctx, address)) writeRoutes(ctx);
}

function createNetdevs(ctx: Ctx, address: string, dir: string): void {
  const vf = vfIdentity(ctx, address);
  if (!vf) {
    for (const n of ctx.placed.get(address)?.spec.netdevs ?? []) {
      addNetdev(ctx.root, dir, {
        name: n.name,
        mac: n.mac,
        ifindex: ctx.state.nextIfindex++,
        devPort: n.devPort ?? 0,
        operstate: n.operstate ?? 'up',
        ...(n.physPortId === undefined ? {} : { physPortId: n.physPortId }),
        ...(n.physPortName === undefined ? {} : { physPortName: n.physPortName }),
      });
    }
    return;
  }
  const sriov = pfSriov(ctx, vf.pf);
  if (!sriov) return;
  const pfNetdevs = ctx.placed.get(vf.pf)?.spec.netdevs ?? [];
  for (let port = 1; port <= (sriov.vfPorts ?? 1); port++) {
    const devPort = port - 1;
    const row = table(ctx, vf.pf, devPort).vfs.find((r) => r.vf === vf.index);
    // The VF driver takes the admin MAC the PF holds for it, or picks a random one.
    const mac: MacAddress = row && row.mac !== ZERO_MAC ? row.mac : freshMac(ctx.state);
    // mlx4 VF ports report the phys_port_id of the PF port they hang off.
    const physPortId = sriov.vfPhysPortId ? pfNetdevs.find((n) => (n.devPort ?? 0) === devPort)?.physPortId : undefined;
    addNetdev(ctx.root, dir, {
      name: vfNetdevName(sriov, vf.index, port),
      mac,
      ifindex: ctx.state.nextIfindex++,
      devPort,
      operstate: 'down',
      ...(physPortId === undefined ? {} : { physPortId }),
    });
    if (row) setRow(ctx, vf.pf, { ...row, netdevMac: mac }, devPort);
  }
}

export function vfNetdevName(sriov: ProfileSriov, index: number, port: number): string {
  return sriov.vfNetdev.replaceAll('{vf}', String(index)).replaceAll('{port}', String(port));
}

export function setRow(ctx: Ctx, pf: string, row: VfRow, port = 0): void {
  const t = table(ctx, pf, port);
  ctx.dirty.add(`${pf}/${port}`);
  const i = t.vfs.findIndex((r) => r.vf === row.vf);
  if (i >= 0) t.vfs[i] = row;
  else t.vfs.push(row);
}

/** A driver's remove: what it created goes, then the link. */
export function unbindDevice(ctx: Ctx, address: string): void {
  const dir = deviceDir(ctx.root, address);
  const driverName = driverOf(ctx.root, address);
  if (dir === undefined || driverName === undefined) return;
  const driver = simDriver(driverName);
  // A PF driver's remove disables SR-IOV: every VF goes, whoever holds it.
  if (driver.sriovConfigure && Number(readAttr(ctx.root, `${dir}/sriov_numvfs`) ?? 0) > 0) disableVfs(ctx, address);
  if (driver.net) removeNetdevs(ctx.root, dir);
  if (driver.net && carriesRoute(ctx, address)) writeRoutes(ctx);
  if (!driver.vfio) removeDisks(ctx, address, dir);
  detachDriver(ctx.root, address);
  if (driver.vfio) {
    unlink(ctx.root, `${dir}/vfio-dev`);
    const group = iommuGroupOf(ctx.root, address);
    if (group !== undefined && !groupHasVfioMember(ctx, group)) unlink(ctx.root, `${DEV_VFIO}/${group}`);
  }
}

function groupHasVfioMember(ctx: Ctx, group: number): boolean {
  return list(ctx.root, `sys/kernel/iommu_groups/${group}/devices`).some((m) => {
    const d = driverOf(ctx.root, m);
    return d !== undefined && simDriver(d).vfio;
  });
}

/** Whether a probe of this device may bind `driver` (pci_device_can_probe: a VF of a PF with
 *  sriov_drivers_autoprobe=0 binds only to its driver_override). */
export function canProbe(ctx: Ctx, address: string, driver: string): boolean {
  const vf = vfIdentity(ctx, address);
  if (!vf) return true;
  const autoprobe = readAttr(ctx.root, `${BUS_DEVICES}/${vf.pf}/sriov_drivers_autoprobe`) !== '0';
  return autoprobe || overrideOf(ctx, address) === driver;
}

export function overrideOf(ctx: Ctx, address: string): string | undefined {
  const v = readAttr(ctx.root, `${BUS_DEVICES}/${address}/driver_override`);
  return v === undefined || v === '(null)' || v === '' ? undefined : v;
}

/** drivers_probe for one device: the override if set, else the native driver, if loaded. */
export function probeDevice(ctx: Ctx, address: string): void {
  if (driverOf(ctx.root, address) !== undefined) return;
  const wanted = overrideOf(ctx, address) ?? nativeDriver(ctx, address);
  if (wanted === undefined || !exists(ctx.root, `${DRIVERS}/${wanted}`)) return;
  if (!canProbe(ctx, address, wanted)) return;
  bindDevice(ctx, address, wanted);
}

/** sriov_numvfs = n on a PF with none: the VFs appear, each with its own IOMMU group, probed
 *  when autoprobe is on. */
export function enableVfs(ctx: Ctx, pf: string, n: number): void {
  const placed = ctx.placed.get(pf);
  const sriov = placed?.spec.sriov;
  const pfDir = deviceDir(ctx.root, pf);
  if (!placed || !sriov || pfDir === undefined) return;
  const parentDir = dirname(pfDir);
  const pfAddr = parsePciAddress(pf);
  const attrs = simDriver(nativeDriver(ctx, pf) ?? '').vfAttrs;
  const spoofchk = attrs?.spoofchkDefault ?? true;
  const rows: VfRow[] = [];
  for (let i = 0; i < n; i++) {
    const address = vfAddress(pfAddr, sriov, i);
    const name = bdf(address);
    addPciDevice(ctx.root, {
      address,
      dir: `${parentDir}/${name}`,
      vendor: placed.spec.vendor,
      device: sriov.vfDevice,
      class: placed.spec.class,
      numaNode: placed.spec.numaNode ?? -1,
      iommuGroup: nextGroup(ctx),
      config: buildConfigSpace({
        vendor: placed.spec.vendor,
        device: sriov.vfDevice,
        class: placed.spec.class,
        multifunction: false,
        pcieType: 'endpoint',
        flr: placed.spec.flr ?? true,
        acs: false,
      }),
    });
    link(ctx.root, `${parentDir}/${name}/physfn`, pfDir);
    link(ctx.root, `${pfDir}/virtfn${i}`, `${parentDir}/${name}`);
    rows.push({
      vf: i,
      mac: attrs?.randomMacAtCreate ? freshMac(ctx.state) : ZERO_MAC,
      vlan: 0,
      qos: 0,
      spoofchk,
      trust: false,
      linkState: 'auto',
      minTxRate: 0,
      maxTxRate: 0,
    });
  }
  for (const port of pfPorts(ctx, pf)) putTable(ctx, { version: 1, pf, port, vfs: rows.map((r) => ({ ...r })) });
  writeAttr(ctx.root, `${pfDir}/sriov_numvfs`, String(n));
  addRepresentors(ctx, pf, pfDir, sriov, n);
  for (let i = 0; i < n; i++) probeDevice(ctx, bdf(vfAddress(pfAddr, sriov, i)));
}

/** switchdev: one representor netdev per VF on the PF (phys_port_name pfNvfM), which the
 *  inventory must not take for an uplink port. */
function addRepresentors(ctx: Ctx, pf: string, pfDir: string, sriov: ProfileSriov, n: number): void {
  const rep = sriov.representors;
  if (!rep || driverOf(ctx.root, pf) === undefined) return;
  const uplink = ctx.placed.get(pf)?.spec.netdevs?.[0];
  for (let i = 0; i < n; i++) {
    addNetdev(ctx.root, pfDir, {
      name: rep.netdev.replaceAll('{vf}', String(i)),
      mac: '00:00:00:00:00:00',
      ifindex: ctx.state.nextIfindex++,
      devPort: 0,
      operstate: 'up',
      ...(uplink?.physPortId === undefined ? {} : { physPortId: uplink.physPortId }),
      physPortName: `pf${rep.pfNumber}vf${i}`,
    });
  }
}

/** sriov_numvfs = 0: every VF is removed (its driver's remove runs first). */
export function disableVfs(ctx: Ctx, pf: string): void {
  const pfDir = deviceDir(ctx.root, pf);
  if (pfDir === undefined) return;
  const links = list(ctx.root, pfDir).filter((n) => /^virtfn\d+$/.test(n));
  for (const l of links) {
    const vfDir = resolveLink(ctx.root, `${pfDir}/${l}`);
    if (vfDir === undefined) continue;
    const vf = basename(vfDir);
    unbindDevice(ctx, vf);
    removePciDevice(ctx.root, vf);
    ctx.usedGroups = undefined;
    unlink(ctx.root, `${pfDir}/${l}`);
  }
  writeAttr(ctx.root, `${pfDir}/sriov_numvfs`, '0');
  for (const port of pfPorts(ctx, pf)) putTable(ctx, { version: 1, pf, port, vfs: [] });
  for (const ifname of list(ctx.root, `${pfDir}/net`)) {
    if (/^pf\d+vf\d+$/.test(readAttr(ctx.root, `${pfDir}/net/${ifname}/phys_port_name`) ?? '')) {
      unlink(ctx.root, `${CLASS_NET}/${ifname}`);
      unlink(ctx.root, `${pfDir}/net/${ifname}`);
    }
  }
}
