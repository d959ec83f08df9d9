import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { asPassthruError } from '../conf/error.ts';
import type { DomainDef } from '../conf/domain/types.ts';
import type { DevicePresentation, Kernel } from '../host/types.ts';
import type { HostdevManager } from '../hostdev/manager.ts';
import { hostdevRequests } from '../hostdev/request.ts';
import type { Logger } from '../lib/logger.ts';
import { chooseAccel, readProcModules } from '../qemu/accel.ts';
import { buildArgv } from '../qemu/argv.ts';
import { prepareLiveDef } from '../qemu/live-def.ts';
import { attachQemu, launchQemu, type QemuProcess } from '../qemu/process.ts';
import { crashPoint } from '../lib/crash-point.ts';
import { formatDefinition, parseDefinition } from './definitions.ts';
import { checkRunnable } from './runnable.ts';
import type { DomainStatus, Store } from './store.ts';

/** A domain's running QEMU, with its live definition. */
export interface Running {
  readonly live: DomainDef;
  readonly pid: number;
  readonly proc: QemuProcess;
  readonly status: DomainStatus;
  /** Forget the process without stopping it (daemon shutdown: QEMU keeps running). */
  detach(): void;
}

export interface RunnerOptions {
  readonly store: Store;
  readonly kernel: Kernel;
  readonly hostdevs: HostdevManager;
  readonly log: Logger;
  /** QEMU binary when the domain has no <emulator>. */
  readonly emulator: string;
}

/**
 * Starts and stops QEMU for a domain, in libvirt's order: live definition (aliases, guest PCI
 * addresses) -> host devices prepared -> argv -> spawn -> QMP -> status saved. Any failure after
 * the devices were prepared gives them back before the error reaches the caller.
 */
export class VmRunner {
  readonly #o: RunnerOptions;

  constructor(options: RunnerOptions) {
    this.#o = options;
  }

  async start(def: DomainDef, onExit: (reason: string) => void): Promise<Running> {
    const { store, kernel, hostdevs, log } = this.#o;
    checkRunnable(def);
    const live = prepareLiveDef(def);
    const requests = hostdevRequests(live);
    await hostdevs.prepare(def.name, requests);
    let proc: QemuProcess | undefined;
    try {
      const presentations = new Map<string, DevicePresentation>();
      for (const r of requests) presentations.set(r.alias, await kernel.present(r.address));
      const dir = store.runDir(def.name);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const paths = {
        qmpSocket: join(dir, 'qmp.sock'),
        consoleLog: join(dir, 'console.log'),
        pidfile: join(dir, 'qemu.pid'),
        logFile: join(dir, 'qemu.log'),
      };
      const accel = chooseAccel(await readProcModules());
      const argv = buildArgv(live, { accel, ...paths, hostDevices: presentations });
      log.info({ domain: def.name, argv }, 'starting QEMU');
      // Written before QEMU exists, with pid 0 until it runs: a daemon killed in between finds
      // the QEMU through its pidfile and knows the start never finished (reattach kills it).
      const starting: DomainStatus = {
        version: 1,
        name: def.name,
        pid: 0,
        qmpSocket: paths.qmpSocket,
        pidfile: paths.pidfile,
        consoleLog: paths.consoleLog,
        liveXml: formatDefinition(live, false),
        startedAt: new Date().toISOString(),
      };
      await store.saveStatus(starting);
      proc = await launchQemu({
        binary: def.devices.emulator ?? this.#o.emulator,
        argv,
        ...paths,
        name: `QEMU of domain ${def.name}`,
      });
      crashPoint('qemu-launched');
      await proc.qmp.execute('cont');
      const status: DomainStatus = { ...starting, pid: proc.pid };
      await store.saveStatus(status);
      return this.#watch(live, proc, status, onExit);
    } catch (err) {
      if (proc) await proc.destroy().catch(() => undefined);
      await store.removeStatus(def.name).catch(() => undefined);
      await hostdevs.release(def.name).catch((e: unknown) => {
        log.error({ domain: def.name, err: asPassthruError(e).message }, 'release after failed start failed');
      });
      throw err;
    }
  }

  /** After a daemon restart: take back a QEMU that still runs, or clean up after one that died. */
  async reattach(status: DomainStatus, onExit: (reason: string) => void): Promise<Running | undefined> {
    const live = parseDefinition(status.liveXml, `run/${status.name}.json`);
    const proc = await attachQemu({
      pidfile: status.pidfile,
      qmpSocket: status.qmpSocket,
      name: `QEMU of domain ${status.name}`,
    }).catch(() => undefined);
    if (proc && status.pid === 0) {
      // The daemon died during start: this QEMU never got to run its guest. Finish the start's
      // rollback rather than adopt a half-made domain.
      await proc.destroy();
      this.#o.log.warn({ domain: status.name }, 'killed the QEMU of a start the daemon did not finish');
    }
    if (!proc || status.pid === 0) {
      await this.#o.hostdevs.release(status.name);
      await this.#o.store.removeStatus(status.name);
      return undefined;
    }
    return this.#watch(live, proc, status, onExit);
  }

  /** Host devices held for domains whose QEMU is gone (a daemon killed mid-start) go back. */
  recoverDevices(running: ReadonlySet<string>): Promise<string[]> {
    return this.#o.hostdevs.recover(running);
  }

  async destroy(run: Running): Promise<void> {
    await run.proc.destroy();
    await this.cleanup(run);
  }

  /** Gives the host devices back and forgets the status; QEMU is gone. */
  async cleanup(run: Running): Promise<void> {
    await this.#o.hostdevs.release(run.live.name);
    await this.#o.store.removeStatus(run.live.name);
  }

  #watch(live: DomainDef, proc: QemuProcess, status: DomainStatus, onExit: (reason: string) => void): Running {
    let detached = false;
    void proc.waitExit().then(
      (st) => {
        if (!detached)
          onExit(st.signal ? `killed by ${st.signal}` : st.code != null ? `exited with ${st.code}` : 'exited');
      },
      () => undefined,
    );
    return {
      live,
      pid: proc.pid,
      proc,
      status,
      detach: () => {
        detached = true;
        void proc.qmp.close();
      },
    };
  }
}
