import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { isMulticastMac, type MacAddress, ZERO_MAC } from '../../conf/mac.ts';
import { formatPciAddress, type PciAddress } from '../../conf/pci-address.ts';
import { parsePciConfig } from '../pci-config.ts';
import { DirSysfs } from '../sysfs.ts';
import type { DevicePresentation, Kernel, VfConfig, VfSettings } from '../types.ts';
import {
  bindDevice,
  type Ctx,
  disableVfs,
  enableVfs,
  newCtx,
  overrideOf,
  probeDevice,
  setRow,
  table,
  unbindDevice,
  vfIdentity,
} from './devices.ts';
import { simDriver } from './drivers.ts';
import { checkFault } from './faults.ts';
import { withSimLock } from './lock.ts';
import { readHostState, writeHostState, writeNetlink } from './state.ts';
import { BUS_DEVICES, CLASS_NET, deviceDir, driverOf, list, readAttr, resolveLink, writeAttr } from './tree.ts';

/** Opens an existing sim host (made by createSimHost). */
export async function openSimHost(dir: string): Promise<SimKernel> {
  const root = resolve(dir);
  readHostState(root);
  return Promise.resolve(new SimKernel(root));
}

function fail(errno: string, message: string, hint?: string): PassthruError {
  return new PassthruError('HOST_FAILED', `${message} (${errno})`, { errno, ...(hint === undefined ? {} : { hint }) });
}

/**
 * The simulated kernel: every write goes through the rules the real one applies (driver
 * binding, SR-IOV enable/disable, VF attributes per PF driver) with its errno values. All
 * state lives in the tree and under `<dir>/sim/`, re-read at each operation, so any number of
 * SimKernel instances (in any process) over one directory behave as one kernel. Operations of
 * one instance run one at a time.
 */
export class SimKernel implements Kernel {
  readonly backend = 'sim' as const;
  readonly sysfs: DirSysfs;
  readonly root: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(root: string) {
    this.root = root;
    this.sysfs = new DirSysfs(root);
  }

  /** Runs one kernel operation under the sim host's lock, with the state read fresh and what
   *  it changed written back after (a read writes nothing, so it cannot undo a write). */
  #op<T>(fn: (ctx: Ctx) => T, mutating = true): Promise<T> {
    const run = (): Promise<T> =>
      withSimLock(this.root, async () => {
        const ctx = newCtx(this.root, readHostState(this.root));
        const before = JSON.stringify(ctx.state);
        applyPendingMacs(ctx);
        try {
          return fn(ctx);
        } finally {
          const stateChanged = JSON.stringify(ctx.state) !== before;
          if (stateChanged) await writeHostState(this.root, ctx.state);
          for (const key of ctx.dirty) {
            const t = ctx.tables.get(key);
            if (t) await writeNetlink(this.root, t);
          }
          // What watchers of this sim host (watch.ts, any process) wait for.
          if (mutating || stateChanged)
            writeFileSync(join(this.root, 'sim', 'generation'), `${Date.now()} ${process.pid}\n`);
        }
      });
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async writeSysfs(path: string, value: string): Promise<void> {
    await checkFault(this.root, 'writeSysfs', `${path}=${value.trim()}`);
    return this.#op((ctx) => {
      writeAttribute(ctx, path, value);
    });
  }

  async vfTable(pfNetdev: string): Promise<VfConfig[]> {
    await checkFault(this.root, 'vfTable', pfNetdev);
    return this.#op((ctx) => {
      const { pf, port } = pfOfNetdev(ctx, pfNetdev);
      return table(ctx, pf, port)
        .vfs.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'netdevMac')) as unknown as VfConfig)
        .sort((a, b) => a.vf - b.vf);
    }, false);
  }

  async setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void> {
    await checkFault(this.root, 'setVf', `${pfNetdev} vf ${vf}`);
    return this.#op((ctx) => {
      setVfAttributes(ctx, pfNetdev, vf, settings);
    });
  }

  async present(address: PciAddress): Promise<DevicePresentation> {
    return this.#op((ctx) => {
      const name = formatPciAddress(address);
      if (deviceDir(ctx.root, name) === undefined) {
        throw new PassthruError('NO_DEVICE', `PCI device ${name} does not exist on this host`);
      }
      const vf = vfIdentity(ctx, name);
      const row = vf ? table(ctx, vf.pf).vfs.find((r) => r.vf === vf.index) : undefined;
      const mac = (row && row.mac !== ZERO_MAC ? row.mac : undefined) ?? netdevMac(ctx, name) ?? row?.netdevMac;
      if (mac === undefined) {
        throw new PassthruError(
          'CONFIG_UNSUPPORTED',
          `the sim host cannot present PCI device ${name} to QEMU: it is not a network function`,
        );
      }
      return { kind: 'emulated-nic', model: 'e1000e', mac };
    }, false);
  }
}

function netdevMac(ctx: Ctx, address: string): MacAddress | undefined {
  const [first] = list(ctx.root, `${BUS_DEVICES}/${address}/net`).sort();
  return first === undefined
    ? undefined
    : (readAttr(ctx.root, `${BUS_DEVICES}/${address}/net/${first}/address`) as MacAddress);
}

/** A PF netdev's function and port; a switchdev representor is not a PF port. */
function pfOfNetdev(ctx: Ctx, pfNetdev: string): { pf: string; port: number } {
  const dev = resolveLink(ctx.root, `${CLASS_NET}/${pfNetdev}`);
  if (dev === undefined)
    throw new PassthruError('NO_DEVICE', `network device '${pfNetdev}' does not exist on this host`);
  if (/^pf\d+vf\d+$/.test(readAttr(ctx.root, `${dev}/phys_port_name`) ?? '')) {
    throw fail(
      'EOPNOTSUPP',
      `${pfNetdev} is a switchdev VF representor, not a PF port: VFs are configured through the PF uplink`,
    );
  }
  const pf = basename(dirname(dirname(dev)));
  if (vfIdentity(ctx, pf)) throw fail('EOPNOTSUPP', `${pfNetdev} is the netdev of a VF, not of a PF`);
  return { pf, port: Number(readAttr(ctx.root, `${dev}/dev_port`) ?? 0) };
}

/** Netdev MAC changes a driver applies "later" land at the next kernel operation. */
function applyPendingMacs(ctx: Ctx): void {
  for (const p of ctx.state.pendingMacs) {
    if (readAttr(ctx.root, p.file) !== undefined) writeAttr(ctx.root, p.file, p.mac, 0o444);
  }
  ctx.state.pendingMacs = [];
}

// ---- sysfs writes ----

function writeAttribute(ctx: Ctx, path: string, raw: string): void {
  const rel = path.replace(/^\/+/, '');
  let real: string;
  try {
    real = relative(ctx.root, join(realpathSync(join(ctx.root, dirname(rel))), basename(rel)));
  } catch {
    throw fail('ENOENT', `cannot write ${path}: no such file`);
  }
  if (real.startsWith('..')) throw fail('ENOENT', `cannot write ${path}: outside the sim host`);
  const value = raw.replace(/\n$/, '');
  if (real === 'sys/bus/pci/drivers_probe') return driversProbe(ctx, value);
  const drv = /^sys\/bus\/pci\/drivers\/([^/]+)\/(bind|unbind|new_id|remove_id)$/.exec(real);
  if (drv) return driverFile(ctx, drv[1] ?? '', drv[2] ?? '', value, path);
  const dir = dirname(real);
  const address = basename(dir);
  if (real.startsWith('sys/devices/') && deviceDir(ctx.root, address) === dir) {
    return deviceAttribute(ctx, address, basename(real), value, path);
  }
  if (!list(ctx.root, dirname(real)).includes(basename(real)))
    throw fail('ENOENT', `cannot write ${path}: no such file`);
  throw fail('EACCES', `cannot write ${path}: the sim kernel does not accept writes to this attribute`);
}

function needDevice(ctx: Ctx, address: string, what: string): void {
  if (deviceDir(ctx.root, address) === undefined) throw fail('ENODEV', `${what}: no PCI device '${address}'`);
}

function driversProbe(ctx: Ctx, address: string): void {
  needDevice(ctx, address, 'cannot probe drivers');
  probeDevice(ctx, address);
}

function driverFile(ctx: Ctx, driver: string, file: string, address: string, path: string): void {
  if (file === 'unbind') {
    needDevice(ctx, address, `cannot unbind from ${driver}`);
    if (driverOf(ctx.root, address) !== driver) {
      throw fail('ENODEV', `cannot unbind PCI device ${address} from ${driver}: it is not bound to ${driver}`);
    }
    unbindDevice(ctx, address);
    return;
  }
  if (file === 'bind') {
    needDevice(ctx, address, `cannot bind to ${driver}`);
    // bind_store: the driver must match the device first (ENODEV), then it must be free (EBUSY).
    const override = overrideOf(ctx, address);
    const matches = override === undefined ? nativeMatches(ctx, address, driver) : override === driver;
    if (!matches) throw fail('ENODEV', `cannot bind PCI device ${address} to ${driver}: the driver does not match it`);
    const current = driverOf(ctx.root, address);
    if (current !== undefined) {
      throw fail('EBUSY', `cannot bind PCI device ${address} to ${driver}: it is bound to ${current}`);
    }
    bindDevice(ctx, address, driver);
    return;
  }
  throw fail(
    'EINVAL',
    `cannot write ${path}: the sim kernel does not model ${file} (libvirt avoids it: it affects every device with that ID)`,
  );
}

function nativeMatches(ctx: Ctx, address: string, driver: string): boolean {
  const vf = vfIdentity(ctx, address);
  const native = vf ? ctx.placed.get(vf.pf)?.spec.sriov?.vfDriver : ctx.placed.get(address)?.spec.driver;
  return native === driver;
}

function deviceAttribute(ctx: Ctx, address: string, attr: string, value: string, path: string): void {
  const dir = `${BUS_DEVICES}/${address}`;
  switch (attr) {
    case 'driver_override':
      if (value.length > 4095)
        throw fail('EINVAL', `cannot set driver_override of PCI device ${address}: name too long`);
      writeAttr(ctx.root, `${dir}/driver_override`, value.trim() === '' ? '(null)' : value.trim());
      return;
    case 'sriov_numvfs':
      return setNumVfs(ctx, address, value);
    case 'sriov_drivers_autoprobe': {
      const b = parseBool(value);
      if (b === undefined) throw fail('EINVAL', `cannot set sriov_drivers_autoprobe of PF ${address} to '${value}'`);
      writeAttr(ctx.root, `${dir}/sriov_drivers_autoprobe`, b ? '1' : '0');
      return;
    }
    case 'reset':
      return reset(ctx, address, value);
    default:
      if (!list(ctx.root, dir).includes(attr)) throw fail('ENOENT', `cannot write ${path}: no such attribute`);
      throw fail('EACCES', `cannot write ${path}: the attribute is read-only`);
  }
}

function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (['1', 'y', 'yes', 'on', 'true'].includes(s)) return true;
  if (['0', 'n', 'no', 'off', 'false'].includes(s)) return false;
  return undefined;
}

/** sriov_numvfs_store of drivers/pci/iov.c, in its order. */
function setNumVfs(ctx: Ctx, pf: string, value: string): void {
  const dir = `${BUS_DEVICES}/${pf}`;
  const total = readAttr(ctx.root, `${dir}/sriov_totalvfs`);
  if (total === undefined) throw fail('ENOENT', `PCI device ${pf} is not an SR-IOV PF: it has no sriov_numvfs`);
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n > 65535) throw fail('EINVAL', `cannot set sriov_numvfs of PF ${pf} to '${value}'`);
  if (n > Number(total)) {
    throw fail('ERANGE', `cannot enable ${n} VFs on PF ${pf}: it supports at most ${total}`);
  }
  const current = Number(readAttr(ctx.root, `${dir}/sriov_numvfs`) ?? 0);
  if (n === current) return;
  const driver = driverOf(ctx.root, pf);
  if (driver === undefined || !simDriver(driver).sriovConfigure) {
    throw fail(
      'ENOENT',
      `cannot change the VF count of PF ${pf}: ${driver === undefined ? 'no driver is bound' : `driver ${driver} does not support SR-IOV configuration`}`,
    );
  }
  if (n === 0) return disableVfs(ctx, pf);
  if (current !== 0) {
    throw fail('EBUSY', `PF ${pf} already has ${current} VFs enabled; set sriov_numvfs to 0 before enabling ${n}`);
  }
  enableVfs(ctx, pf, n);
}

function reset(ctx: Ctx, address: string, value: string): void {
  if (value.trim() !== '1') throw fail('EINVAL', `cannot reset PCI device ${address}: write 1 to reset`);
  const cfg = parsePciConfig(readFileSync(join(ctx.root, BUS_DEVICES, address, 'config')));
  // Without a function-level method the kernel falls back to a secondary bus reset, which it
  // allows only when the device is alone on its bus.
  const bus = address.slice(0, 7);
  const onBus = list(ctx.root, BUS_DEVICES).filter((n) => n.startsWith(bus));
  if (!(cfg?.pcie?.flr || cfg?.afFlr || cfg?.pmReset) && onBus.length > 1) {
    throw fail('ENOTTY', `cannot reset PCI device ${address}: no FLR, PM reset or bus reset available`);
  }
}

// ---- VF attributes (rtnetlink RTM_SETLINK IFLA_VFINFO_LIST on the PF) ----

function setVfAttributes(ctx: Ctx, pfNetdev: string, vf: number, s: VfSettings): void {
  const { pf, port } = pfOfNetdev(ctx, pfNetdev);
  const driverName = driverOf(ctx.root, pf);
  const support = driverName === undefined ? undefined : simDriver(driverName).vfAttrs;
  if (!support) throw fail('EOPNOTSUPP', `PF ${pfNetdev} (${pf}) does not support VF configuration`);
  const t = table(ctx, pf, port);
  const row = t.vfs.find((r) => r.vf === vf);
  if (!row) throw fail('EINVAL', `PF ${pfNetdev} has no VF ${vf} (it has ${t.vfs.length} VFs)`);
  const who = `VF ${vf} of PF ${pfNetdev}`;
  let next = { ...row };
  const refuse = (errno: string | undefined, what: string): void => {
    if (errno !== undefined) {
      setRow(ctx, pf, next, port);
      throw fail(errno, `cannot set ${what} on ${who}: driver ${driverName ?? '?'} refuses it`);
    }
  };
  // do_setvfinfo's order: MAC, VLAN, rate, spoofchk, link state, trust. An error stops the
  // request; what came before it stays applied, as in the kernel.
  if (s.mac !== undefined) {
    if (isMulticastMac(s.mac))
      throw fail('EINVAL', `cannot set admin MAC ${s.mac} on ${who}: it is a multicast address`);
    if (s.mac === ZERO_MAC) refuse(support.zeroMac, 'an all-zero admin MAC');
    next = { ...next, mac: s.mac };
    macChanged(ctx, pf, port, vf, s.mac, support.macChange);
  }
  if (s.vlan !== undefined) {
    const { id, qos = 0, proto = '802.1Q' } = s.vlan;
    if (id < 0 || id > 4095 || qos < 0 || qos > 7) throw fail('EINVAL', `cannot set VLAN ${id} qos ${qos} on ${who}`);
    if (proto === '802.1ad') refuse(support.vlanProto8021ad, 'VLAN protocol 802.1ad');
    next = { ...next, vlan: id, qos, ...(proto === '802.1ad' ? { vlanProto: proto } : {}) };
    if (proto !== '802.1ad') delete (next as { vlanProto?: string }).vlanProto;
  }
  if (s.rate !== undefined) {
    if (s.rate.minTx > 0) refuse(support.minTxRate, `min_tx_rate ${s.rate.minTx}`);
    if (s.rate.maxTx > 0) refuse(support.maxTxRate, `max_tx_rate ${s.rate.maxTx}`);
    if (s.rate.maxTx !== 0 && s.rate.minTx > s.rate.maxTx)
      throw fail('EINVAL', `cannot set min_tx_rate above max_tx_rate on ${who}`);
    next = { ...next, minTxRate: s.rate.minTx, maxTxRate: s.rate.maxTx };
  }
  if (s.spoofchk !== undefined) {
    refuse(support.spoofchk, 'spoofchk');
    next = { ...next, spoofchk: s.spoofchk };
  }
  if (s.linkState !== undefined) {
    refuse(support.linkState, `link state ${s.linkState}`);
    next = { ...next, linkState: s.linkState };
  }
  if (s.trust !== undefined) {
    refuse(support.trust, 'trust');
    next = { ...next, trust: s.trust };
  }
  setRow(ctx, pf, next, port);
}

/** mlx5 resets the VF on an admin MAC change, so a bound VF driver comes back with it at once;
 *  i40e does the same a little later; igb and mlx4 wait for the VF driver to reload. */
function macChanged(
  ctx: Ctx,
  pf: string,
  port: number,
  vf: number,
  mac: MacAddress,
  mode: 'live' | 'async' | 'reload',
): void {
  const vfDir = resolveLink(ctx.root, `${BUS_DEVICES}/${pf}/virtfn${vf}`);
  if (vfDir === undefined || mac === ZERO_MAC || mode === 'reload') return;
  for (const ifname of list(ctx.root, `${vfDir}/net`)) {
    const file = `${vfDir}/net/${ifname}/address`;
    if (Number(readAttr(ctx.root, `${vfDir}/net/${ifname}/dev_port`) ?? 0) !== port) continue;
    if (mode === 'live') writeAttr(ctx.root, file, mac, 0o444);
    else ctx.state.pendingMacs.push({ file, mac });
  }
}
