import type { DomainDef } from '../conf/domain/types.ts';
import type { AuditTrail, HostChange } from '../host/audit.ts';
import { diskImages } from '../host/disk-images.ts';
import type { HostdevManager } from '../hostdev/manager.ts';
import type { Logger } from '../lib/logger.ts';
import type { Pools } from '../network/pools.ts';
import { attachQemu, type ExitStatus, type QemuProcess } from '../qemu/process.ts';
import { GuestConsole } from './console.ts';
import type { QemuOwnership } from './qemu-owner.ts';
import type { HostNetdevs } from '../host/netdev.ts';
import { unplugHostNics } from './host-nics.ts';
import { parseDefinition } from './definitions.ts';
import type { ImageClaims } from './image-claims.ts';
import type { HostViews } from './host-views.ts';
import type { DomainStatus, Store } from './store.ts';

/** A domain's running QEMU, with its live definition. */
export interface Running {
  /** Replaced, with the status, by hot-plug and hot-unplug (devices.ts), under the domain lock. */
  live: DomainDef;
  readonly pid: number;
  readonly proc: QemuProcess;
  status: DomainStatus;
  /** The serial console the daemon holds (absent when the definition sends it to a file). */
  readonly console?: GuestConsole;
  /** Forget the process without stopping it (daemon shutdown: QEMU keeps running). */
  detach(): void;
}

/** What starting, taking back and stopping a QEMU needs from the rest of the daemon. */
export interface RunDeps {
  readonly store: Store;
  readonly hostdevs: HostdevManager;
  /** Where `<interface type='network'>` and pool hostdevs get their device at start. */
  readonly pools: Pools;
  readonly hostViews: HostViews;
  readonly log: Logger;
  /** QEMU binary when the domain has no <emulator>. */
  readonly emulator: string;
  /** Free root ports a q35 definition keeps for hot-plug (define fills them in; default 1). */
  readonly spareRootPorts?: number;
  /** Disk images held by running domains (one writer per image). */
  readonly images: ImageClaims;
  /** Where QEMU starts and stops are recorded beside the host's changes (absent: not recorded). */
  readonly audit?: AuditTrail;
  /** What an unprivileged QEMU (--qemu-user) owns while it runs, given back after. */
  readonly qemuOwner: QemuOwnership;
  /** Taps and macvtaps of bridge and direct interfaces (host/netdev.ts). */
  readonly netdevs: HostNetdevs;
}

/** Starts or stops a QEMU, recorded in the audit trail when the daemon keeps one. */
export function auditedQemu<T>(deps: RunDeps, change: HostChange<T>, work: () => Promise<T>): Promise<T> {
  return deps.audit ? deps.audit.change(change, work) : work();
}

/** Kills a QEMU the daemon holds: an audited qemu-stop. */
export function stopQemu(deps: RunDeps, domain: string, proc: QemuProcess): Promise<void> {
  return auditedQemu(deps, { action: 'qemu-stop', domain, before: { pid: proc.pid } }, async () => {
    await proc.destroy();
  });
}

/** QEMU went away by itself: the words for the event, and how it ended. */
export type OnExit = (reason: string, status: ExitStatus) => void;

/** After a daemon restart: take back a QEMU that still runs, or clean up after one that died. */
export async function reattachRun(deps: RunDeps, status: DomainStatus, onExit: OnExit): Promise<Running | undefined> {
  const live = parseDefinition(status.liveXml, `run/${status.name}.json`);
  const proc = await attachQemu({
    pidfile: status.pidfile,
    qmpSocket: status.qmpSocket,
    name: `QEMU of domain ${status.name}`,
  }).catch(() => undefined);
  // The daemon died during start, or before an incoming migration without a lease was
  // confirmed: this QEMU never got to run its guest. Finish the rollback rather than adopt a
  // half-made domain. An incoming migration held on a lease is taken back under it
  // (migration/destination.ts): its source may still be sending and come to finish it.
  const unfinished = status.pid === 0 || (status.incoming === true && status.incomingLeaseMs === undefined);
  if (proc && unfinished) {
    await stopQemu(deps, status.name, proc);
    deps.log.warn(
      { domain: status.name },
      'killed the QEMU of a start or incoming migration the daemon did not finish',
    );
  }
  if (!proc || unfinished) {
    await deps.qemuOwner.giveAll(status.name);
    await unplugHostNics(live, deps.netdevs);
    await deps.hostdevs.release(status.name);
    await releasePoolDevices(deps, status.name);
    await deps.store.removeStatus(status.name);
    return undefined;
  }
  deps.images.claim(status.name, await diskImages(live), { force: true });
  const console =
    status.consoleSocket === undefined
      ? undefined
      : await GuestConsole.open(status.consoleSocket, status.consoleLog).catch((err: unknown) => {
          deps.log.warn({ domain: status.name, err }, 'the guest console could not be taken back');
          return undefined;
        });
  return watchRun(live, proc, status, onExit, console);
}

export async function destroyRun(deps: RunDeps, run: Running): Promise<void> {
  await stopQemu(deps, run.live.name, run.proc);
  await cleanupRun(deps, run);
}

/** Gives the host devices back and forgets the status; QEMU is gone. */
export async function cleanupRun(deps: RunDeps, run: Running): Promise<void> {
  deps.images.release(run.live.name);
  // Before the devices: /dev/vfio/N goes when its group leaves vfio, and root must own it first.
  await deps.qemuOwner.giveAll(run.live.name);
  await unplugHostNics(run.live, deps.netdevs);
  await deps.hostdevs.release(run.live.name);
  // Only once the device manager has the VF back on its host driver may another guest get it.
  await releasePoolDevices(deps, run.live.name);
  await deps.store.removeStatus(run.live.name);
}

/** Gives a domain's pool devices back (only `devices`, PCI addresses, when given: a hot-unplug),
 *  and looks at them again on the host (their driver changed under the pools' cached view). */
export async function releasePoolDevices(deps: RunDeps, domain: string, devices?: readonly string[]): Promise<void> {
  const released = await deps.pools.release(domain, devices);
  await deps.hostViews.refresh(released.map((r) => r.device));
}

/** A Running that reports QEMU's exit (unless detached first). */
export function watchRun(
  live: DomainDef,
  proc: QemuProcess,
  status: DomainStatus,
  onExit: OnExit,
  console?: GuestConsole,
): Running {
  let detached = false;
  void proc.waitExit().then(
    (st) => {
      if (!detached)
        onExit(
          st.signal
            ? `killed by ${st.signal}`
            : st.code != null
              ? `exited with ${st.code}`
              : st.announced
                ? 'exited after a shutdown'
                : 'gone without a shutdown (killed or crashed)',
          st,
        );
    },
    () => undefined,
  );
  return {
    live,
    pid: proc.pid,
    proc,
    status,
    ...(console ? { console } : {}),
    detach: () => {
      detached = true;
      console?.close();
      void proc.qmp.close();
    },
  };
}
