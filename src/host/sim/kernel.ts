import { appendFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { PassthruError } from '../../conf/error.ts';
import { type MacAddress, ZERO_MAC } from '../../conf/mac.ts';
import { formatPciAddress, type PciAddress } from '../../conf/pci-address.ts';
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
import { splitSettings } from '../vf-caps.ts';
import {
  bindDevice,
  type Ctx,
  disableVfs,
  enableVfs,
  newCtx,
  overrideOf,
  probeDevice,
  table,
  unbindDevice,
  vfIdentity,
} from './devices.ts';
import { simDriver } from './drivers.ts';
import { checkFault } from './faults.ts';
import { withSimLock } from './lock.ts';
import { resetFunction, setResetMethod } from './reset.ts';
import { applyLateMacs, fail, pfOfNetdev, portProfileKey, setVfAttribute, setVfPort, vfPortStatus } from './vf.ts';
import { readHostState, readSwitchConfig, writeHostState, writeNetlink } from './state.ts';
import {
  BUS_DEVICES,
  CHANGE_LOG,
  CLASS_NET,
  deviceDir,
  driverOf,
  list,
  readAttr,
  recordTouches,
  resolveLink,
  writeAttr,
} from './tree.ts';

/** Opens an existing sim host (made by createSimHost). */
export async function openSimHost(dir: string): Promise<SimKernel> {
  const root = resolve(dir);
  readHostState(root);
  return Promise.resolve(new SimKernel(root));
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
        const touched = new Set<string>();
        try {
          return recordTouches(touched, () => {
            applyPendingMacs(ctx);
            applyLateMacs(ctx);
            return fn(ctx);
          });
        } finally {
          const stateChanged = JSON.stringify(ctx.state) !== before;
          if (stateChanged) await writeHostState(this.root, ctx.state);
          for (const key of ctx.dirty) {
            const t = ctx.tables.get(key);
            if (t) await writeNetlink(this.root, t);
          }
          // What watchers of this sim host (watch.ts, any process) wait for.
          // Which functions changed, for watchers to re-read only those (one line per operation).
          if (touched.size > 0) appendFileSync(join(this.root, 'sim', CHANGE_LOG), `${[...touched].join(' ')}\n`);
          if (mutating || stateChanged || touched.size > 0)
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
        .vfs.map(
          (r) =>
            Object.fromEntries(
              Object.entries(r).filter(([k]) => k !== 'netdevMac' && k !== 'port'),
            ) as unknown as VfConfig,
        )
        .sort((a, b) => a.vf - b.vf);
    }, false);
  }

  /** One request per attribute, as the linux backends send them (and as libvirt does), each
   *  with its own fault check: a fault can hit the VLAN of a request and not its MAC. */
  async setVf(pfNetdev: string, vf: number, settings: VfSettings): Promise<void> {
    for (const { what, one } of splitSettings(settings)) {
      const fault = await checkFault(this.root, 'setVf', `${pfNetdev} vf ${vf} ${what}`);
      await this.#op((ctx) => {
        setVfAttribute(ctx, pfNetdev, vf, one, fault);
      });
    }
  }

  async setVfPort(pfNetdev: string, vf: number, profile: VfPortProfile, request: PortRequest): Promise<void> {
    await checkFault(this.root, 'setVfPort', `${pfNetdev} vf ${vf} ${request} ${portProfileKey(profile)}`);
    const answer = readSwitchConfig(this.root).answers[portProfileKey(profile)];
    return this.#op((ctx) => {
      setVfPort(ctx, pfNetdev, vf, profile, request, answer);
    });
  }

  /** Mutating: a status read is what moves an answer in progress along. */
  async vfPortStatus(pfNetdev: string, vf: number): Promise<VfPortState | undefined> {
    return this.#op((ctx) => vfPortStatus(ctx, pfNetdev, vf), false);
  }

  /** `ip link set dev NAME up|down` (sim only): most PF drivers take VF settings only while
   *  the PF is up. */
  async setNetdevUp(ifname: string, up: boolean): Promise<void> {
    return this.#op((ctx) => {
      const dev = resolveLink(ctx.root, `${CLASS_NET}/${ifname}`);
      if (dev === undefined)
        throw new PassthruError('NO_DEVICE', `network device '${ifname}' does not exist on this host`);
      writeAttr(ctx.root, `${dev}/operstate`, up ? 'up' : 'down', 0o444);
      writeAttr(ctx.root, `${dev}/carrier`, up ? '1' : '0', 0o644);
    });
  }

  async present(address: PciAddress): Promise<DevicePresentation> {
    return this.#op((ctx) => {
      const name = formatPciAddress(address);
      if (deviceDir(ctx.root, name) === undefined) {
        throw new PassthruError('NO_DEVICE', `PCI device ${name} does not exist on this host`);
      }
      const pciClass = Number(readAttr(ctx.root, `${BUS_DEVICES}/${name}/class`) ?? '0');
      if (pciClass >> 8 === BRIDGE_CLASS) {
        throw new PassthruError('CONFIG_UNSUPPORTED', `PCI device ${name} is a bridge: QEMU cannot be given it`);
      }
      if (pciClass >> 16 !== NETWORK_CLASS) {
        // A GPU, its audio function, an NVMe controller: QEMU's `edu` device stands in, one per
        // function, so the guest can count what it was given (docs/hostdev.md).
        return { kind: 'emulated-device', model: 'edu' };
      }
      const vf = vfIdentity(ctx, name);
      const row = vf ? table(ctx, vf.pf).vfs.find((r) => r.vf === vf.index) : undefined;
      // A function of the profile (not a VF) keeps its factory MAC (what `ethtool -P` shows),
      // also while vfio-pci holds it and its netdev is gone.
      const factory = ctx.placed.get(name)?.spec.netdevs?.[0]?.mac as MacAddress | undefined;
      const mac =
        (row && row.mac !== ZERO_MAC ? row.mac : undefined) ?? netdevMac(ctx, name) ?? row?.netdevMac ?? factory;
      if (mac !== undefined) return { kind: 'emulated-nic', model: 'e1000e', mac };
      throw new PassthruError(
        'CONFIG_UNSUPPORTED',
        `the sim host cannot present PCI device ${name} to QEMU: it is a network function with no MAC to give its emulated NIC`,
      );
    }, false);
  }
}

/** PCI base class 02h: network controller; 0604h: PCI-to-PCI bridge. */
const NETWORK_CLASS = 0x02;
const BRIDGE_CLASS = 0x0604;

function netdevMac(ctx: Ctx, address: string): MacAddress | undefined {
  const [first] = list(ctx.root, `${BUS_DEVICES}/${address}/net`).sort();
  return first === undefined
    ? undefined
    : (readAttr(ctx.root, `${BUS_DEVICES}/${address}/net/${first}/address`) as MacAddress);
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
    case 'reset_method': {
      if (!list(ctx.root, dir).includes('reset_method'))
        throw fail('ENOENT', `cannot write ${path}: no such attribute`);
      const refused = setResetMethod(ctx.root, address, value);
      if (refused !== undefined) throw fail('EINVAL', `cannot set reset_method of PCI device ${address}: ${refused}`);
      return;
    }
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
  if (resetFunction(ctx.root, address) === undefined) {
    throw fail('ENOTTY', `cannot reset PCI device ${address}: no FLR, PM reset or bus reset available`);
  }
}
