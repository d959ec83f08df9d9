import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { asPassthruError } from '../conf/error.ts';
import type { DomainDef } from '../conf/domain/types.ts';
import { diskImages, withBackingChains } from '../host/disk-images.ts';
import type { DevicePresentation } from '../host/types.ts';
import { type HostdevRequest, hostdevRequests } from '../hostdev/request.ts';
import { crashPoint } from '../lib/crash-point.ts';
import { chooseAccel, readProcModules } from '../qemu/accel.ts';
import { buildArgv, usesConsoleFallback } from '../qemu/argv.ts';
import { prepareLiveDef } from '../qemu/live-def.ts';
import { memlockBytes } from '../qemu/memlock.ts';
import { launchCommand } from '../qemu/run-as.ts';
import { launchQemu, type QemuProcess } from '../qemu/process.ts';
import { GuestConsole } from './console.ts';
import { closeFds } from '../host/netdev.ts';
import type { NicBackend } from '../qemu/device-props.ts';
import { applyPinning, checkResources, liveCpu, type PlacementPlan, planPlacement } from './placement.ts';
import { applyLinkStates, checkHostNics, plugHostNics, unplugHostNics } from './host-nics.ts';
import { poolWants, withGrants } from '../network/actual.ts';
import { guestNumaNodes } from '../network/numa.ts';
import { formatStatus } from './definitions.ts';
import { type OwnedDevice } from './qemu-owner.ts';
import { checkRunnable } from './runnable.ts';
import { withStandbyParents } from './hybrid.ts';
import {
  auditedQemu,
  type OnExit,
  releasePoolDevices,
  type RunDeps,
  type Running,
  stopQemu,
  watchRun,
} from './runs.ts';
import type { DomainStatus } from './store.ts';

/** What the stages of one start hand each other. Each stage fills in its part. */
interface StartState {
  readonly def: DomainDef;
  /** A migration's destination: QEMU waits for the stream (-incoming defer) and stays paused. */
  readonly incoming?: boolean;
  /** The definition with its disks' backing chains. */
  withChains?: DomainDef;
  /** The definition with the devices its pools gave (allocate). */
  pooled?: DomainDef;
  live?: DomainDef;
  requests?: HostdevRequest[];
  presentations?: Map<string, DevicePresentation>;
  /** The prepared host devices with a guest device (what QEMU opens). */
  assigned?: OwnedDevice[];
  /** The host side of bridge and direct NICs (hostNics), and the descriptors QEMU inherits. */
  nicBackends?: ReadonlyMap<string, NicBackend>;
  passFds?: readonly number[];
  /** vCPU, emulator and memory placement (placement). */
  placement?: PlacementPlan;
  proc?: QemuProcess;
  console?: GuestConsole;
  status?: DomainStatus;
}

/**
 * One stage of a start. `undo` gives back what `run` took; it runs, newest stage first, for
 * every stage that finished when a later one fails. A stage that fails cleans up its own half.
 */
interface Stage {
  readonly name: string;
  run(s: StartState, deps: RunDeps): Promise<void> | void;
  undo?(s: StartState, deps: RunDeps): Promise<void>;
}

/** Refuses what passthrud cannot run yet, before anything is taken from the host. */
const check: Stage = {
  name: 'check',
  run: (s) => checkRunnable(s.def),
};

/** What the host must have for this domain (bridges, parent netdevs), checked before anything
 *  is taken, so that a missing one changes nothing. */
const hostCheck: Stage = {
  name: 'host check',
  run: async (s, deps) => {
    await checkResources(s.def, deps);
    await checkHostNics(s.def, deps.netdevs);
  },
};

/** Disk images: each checked to exist, qcow2 backing chains read from the images (shown in
 *  the live XML, given to QEMU node by node), and claimed so that no other running domain
 *  writes what this one opens. */
const storage: Stage = {
  name: 'storage',
  run: async (s, deps) => {
    const def = await withBackingChains(s.def);
    deps.images.claim(s.def.name, await diskImages(def));
    s.withChains = def;
  },
  undo: (s, deps) => {
    deps.images.release(s.def.name);
    return Promise.resolve();
  },
};

/**
 * A device from its pool for each `<interface type='network'>` and `<hostdev><source pool>`,
 * all or none, before the live definition (a VF interface takes a hostdevN alias). The pools
 * reserve before their first await, so concurrent starts never get one device twice; the
 * device manager then takes the lease (prepare).
 */
const allocate: Stage = {
  name: 'allocate',
  run: async (s, deps) => {
    const wants = poolWants(s.def, guestNumaNodes(s.def, await deps.hostViews.cpuNodes()));
    if (wants.length === 0) return;
    const view = await deps.hostViews.get();
    const grants = await deps.pools.allocate(s.def.name, wants, view, (bdf) => deps.hostdevs.holder(bdf));
    try {
      s.pooled = withGrants(need(s.withChains), grants, deps.pools.defs());
    } catch (err) {
      await deps.pools.release(s.def.name);
      throw err;
    }
  },
  undo: async (s, deps) => {
    await releasePoolDevices(deps, s.def.name).catch((e: unknown) => {
      deps.log.error({ domain: s.def.name, err: asPassthruError(e).message }, 'pool release after failed start failed');
    });
  },
};

/** libvirt's start-time fill-in: aliases and guest addresses (qemu/live-def). */
const liveDefinition: Stage = {
  name: 'live definition',
  run: (s, deps) => {
    s.live = prepareLiveDef(s.pooled ?? need(s.withChains), spareOption(deps));
    // An incoming migration's port profiles are only pre-associated until it finishes here.
    s.requests = hostdevRequests(s.live, { incoming: s.incoming === true });
  },
};

/** [seed 002] Each hostdev-hybrid interface's standby goes on a macvtap of its VF's PF: the PF
 *  netdev is found and checked before anything is taken (daemon/hybrid.ts). */
const hybridStandbys: Stage = {
  name: 'hybrid standbys',
  run: async (s, deps) => {
    s.live = await withStandbyParents(need(s.live), deps.hostViews, deps.netdevs);
  },
};

/** The host devices: planned, journalled and bound to vfio by the device manager. */
const prepare: Stage = {
  name: 'prepare',
  run: async (s, deps) => {
    // All or nothing: a prepare that fails has given back what it took. Each device comes back
    // with how QEMU is to be given it, so nothing here asks the host again.
    const prepared = await deps.hostdevs.prepare(s.def.name, need(s.requests));
    const presentations = new Map<string, DevicePresentation>();
    for (const d of prepared) if (d.presentation) presentations.set(d.alias, d.presentation);
    s.presentations = presentations;
    s.assigned = prepared.filter((d) => d.presentation !== undefined);
  },
  undo: releaseAfterFailure,
};

/** The taps and macvtaps of bridge and direct interfaces, named in the live definition. */
const hostNics: Stage = {
  name: 'host NICs',
  run: async (s, deps) => {
    const plugged = await plugHostNics(need(s.live), deps.netdevs, deps.qemuOwner.user);
    s.live = plugged.live;
    s.nicBackends = plugged.backends;
    s.passFds = plugged.fds;
  },
  undo: async (s, deps) => {
    closeFds(s.passFds ?? []);
    await unplugHostNics(need(s.live), deps.netdevs).catch((e: unknown) => {
      deps.log.error(
        { domain: s.def.name, err: asPassthruError(e).message },
        'host NIC removal after failed start failed',
      );
    });
  },
};

/** Where the vCPUs, emulator threads and memory go: pins, hugepages, NUMA policy, and with
 *  placement='device' the node of the host devices just prepared. */
const placement: Stage = {
  name: 'placement',
  run: async (s, deps) => {
    s.live = liveCpu(need(s.live), chooseAccel(await readProcModules()));
    s.placement = await planPlacement(s.live, deps);
  },
};

/** QEMU: run directory, argv, status (pid 0 first), spawn, QMP, `cont`, status with the pid. */
const launch: Stage = {
  name: 'launch',
  run: async (s, deps) => {
    try {
      await launchInner(s, deps);
    } catch (err) {
      await killAfterFailure(s, deps);
      throw err;
    }
  },
  undo: killAfterFailure,
};

/** The start, in libvirt's order. A feature that needs a step at start adds a stage here. */
const STAGES: readonly Stage[] = [
  check,
  hostCheck,
  storage,
  allocate,
  liveDefinition,
  hybridStandbys,
  prepare,
  hostNics,
  placement,
  launch,
];

/** Starts QEMU for a domain; any failure gives back everything the earlier stages took. */
export async function startDomain(
  deps: RunDeps,
  def: DomainDef,
  onExit: OnExit,
  mode: { readonly incoming?: boolean } = {},
): Promise<Running> {
  const s: StartState = { def, ...(mode.incoming ? { incoming: true } : {}) };
  const done: Stage[] = [];
  try {
    for (const stage of STAGES) {
      await stage.run(s, deps);
      done.push(stage);
    }
  } catch (err) {
    for (const stage of done.reverse()) await stage.undo?.(s, deps);
    throw err;
  }
  return watchRun(need(s.live), need(s.proc), need(s.status), onExit, s.console);
}

async function launchInner(s: StartState, deps: RunDeps): Promise<void> {
  const { store, log } = deps;
  const live = need(s.live);
  const dir = store.runDir(s.def.name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = {
    qmpSocket: join(dir, 'qmp.sock'),
    consoleLog: join(dir, 'console.log'),
    pidfile: join(dir, 'qemu.pid'),
    logFile: join(dir, 'qemu.log'),
  };
  const consoleSocket = join(dir, 'console.sock');
  const accel = chooseAccel(await readProcModules());
  const argv = buildArgv(live, {
    accel,
    ...paths,
    consoleSocket,
    hostDevices: need(s.presentations),
    ...(s.nicBackends ? { nicBackends: s.nicBackends } : {}),
    ...(s.placement?.memory ? { memory: s.placement.memory } : {}),
    ...(s.incoming ? { incoming: true } : {}),
  });
  log.info({ domain: s.def.name, argv }, 'starting QEMU');
  // Written before QEMU exists, with pid 0 until it runs: a daemon killed in between finds
  // the QEMU through its pidfile and knows the start never finished (reattach kills it).
  const starting: DomainStatus = {
    version: 1,
    name: s.def.name,
    pid: 0,
    qmpSocket: paths.qmpSocket,
    pidfile: paths.pidfile,
    consoleLog: paths.consoleLog,
    ...(usesConsoleFallback(live) ? { consoleSocket } : {}),
    liveXml: formatStatus(live),
    startedAt: new Date().toISOString(),
    ...(s.incoming ? { incoming: true } : {}),
  };
  await store.saveStatus(starting);
  // VFIO pins guest RAM: the locked-memory limit is in place before QEMU exists.
  const vfio = [...need(s.presentations).values()].filter((p) => p.kind === 'vfio').length;
  const [binary, command] = launchCommand(s.def.devices.emulator ?? deps.emulator, argv, {
    memlockBytes: memlockBytes(live, vfio),
    user: deps.qemuOwner.user,
  });
  // An unprivileged QEMU opens these itself: they are its own before it exists.
  await deps.qemuOwner.forStart(s.def.name, live, dir, need(s.assigned));
  try {
    s.proc = await auditedQemu(
      deps,
      { action: 'qemu-start', domain: s.def.name, outcome: (p: QemuProcess) => ({ pid: p.pid }) },
      () =>
        launchQemu({
          binary,
          argv: command,
          ...paths,
          name: `QEMU of domain ${s.def.name}`,
          ...(s.passFds?.length ? { passFds: s.passFds } : {}),
        }),
    );
  } finally {
    // QEMU has its own copies now (or never will): the daemon keeps none open.
    closeFds(s.passFds ?? []);
    s.passFds = [];
  }
  crashPoint('qemu-launched');
  // The console's client is connected before the guest runs, so its log misses nothing.
  if (starting.consoleSocket !== undefined)
    s.console = await GuestConsole.open(starting.consoleSocket, paths.consoleLog);
  // An incoming guest runs once the migration is confirmed (daemon/migration/destination.ts).
  await applyLinkStates(live, s.proc.qmp);
  if (s.placement) await applyPinning(s.placement, s.proc);
  if (!s.incoming) await s.proc.qmp.execute('cont');
  s.status = { ...starting, pid: s.proc.pid };
  await store.saveStatus(s.status);
}

async function killAfterFailure(s: StartState, deps: RunDeps): Promise<void> {
  s.console?.close();
  if (s.proc) await stopQemu(deps, s.def.name, s.proc).catch(() => undefined);
  await deps.qemuOwner.giveAll(s.def.name).catch((e: unknown) => {
    deps.log.error(
      { domain: s.def.name, err: asPassthruError(e).message },
      'giving back files after failed start failed',
    );
  });
  await deps.store.removeStatus(s.def.name).catch(() => undefined);
}

async function releaseAfterFailure(s: StartState, deps: RunDeps): Promise<void> {
  await deps.hostdevs.release(s.def.name).catch((e: unknown) => {
    deps.log.error({ domain: s.def.name, err: asPassthruError(e).message }, 'release after failed start failed');
  });
}

/** The daemon's spare-root-port setting, as the address planner takes it. */
export function spareOption(deps: RunDeps): { spareRootPorts?: number } {
  return deps.spareRootPorts === undefined ? {} : { spareRootPorts: deps.spareRootPorts };
}

function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('start stage ran before the stage that fills its input');
  return value;
}
