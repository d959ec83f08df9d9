import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../conf/error.ts';
import { type Clock, QmpClient, realClock } from './qmp.ts';

export interface LaunchOptions {
  readonly binary: string;
  readonly argv: readonly string[];
  /** QEMU writes its pid here (-pidfile in argv must name the same file). */
  readonly pidfile: string;
  /** QEMU's stdout and stderr, appended; a header line per start. */
  readonly logFile: string;
  readonly qmpSocket: string;
  /** Names the process in errors ("QEMU of domain web1"). */
  readonly name?: string;
  /** From spawn to a completed QMP handshake. */
  readonly startTimeoutMs?: number;
  readonly clock?: Clock;
  /** Open descriptors QEMU inherits as fd 3, 4, ... (a macvtap's /dev/tapN, named in argv). */
  readonly passFds?: readonly number[];
}

export interface ExitStatus {
  /** Known only for a process this daemon spawned itself. */
  readonly code?: number | null;
  readonly signal?: NodeJS.Signals | null;
  /** For a QEMU this daemon attached to (its exit status is its parent's to read): whether it
   *  announced its end on QMP (SHUTDOWN: the guest powered off, quit, SIGTERM) before it went.
   *  Gone without it, it was killed or crashed, as libvirt reads a monitor EOF. */
  readonly announced?: boolean;
}

/** A running QEMU with its QMP connection. */
export interface QemuProcess {
  readonly pid: number;
  readonly qmp: QmpClient;
  isAlive(): boolean;
  /** Sends a signal (SIGTERM by default); a process already gone is not an error. */
  kill(signal?: NodeJS.Signals): void;
  /** Resolves when the process has exited (without a timeout: whenever that is); TIMEOUT when
   *  it has not within timeoutMs. Then the QMP connection is closed too. */
  waitExit(timeoutMs?: number): Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL after graceMs (libvirt's virProcessKillPainfully). */
  destroy(graceMs?: number): Promise<ExitStatus>;
}

const LOG_TAIL_LINES = 15;

/**
 * Starts QEMU detached from the daemon (its own process group, no pipes to us), so it outlives a
 * daemon restart and attachQemu can pick it up again. Resolves once QMP is connected and
 * negotiated. When QEMU exits first, the error carries the last lines of its log.
 */
export async function launchQemu(opts: LaunchOptions): Promise<QemuProcess> {
  const name = opts.name ?? 'QEMU';
  const timeoutMs = opts.startTimeoutMs ?? 30_000;
  await removeIfThere(opts.qmpSocket);
  await removeIfThere(opts.pidfile);
  const log = openSync(opts.logFile, 'a', 0o600);
  let child;
  try {
    writeSync(log, `${new Date().toISOString()} starting: ${[opts.binary, ...opts.argv].map(shellWord).join(' ')}\n`);
    child = spawn(opts.binary, opts.argv, { detached: true, stdio: ['ignore', log, log, ...(opts.passFds ?? [])] });
  } finally {
    closeSync(log);
  }
  if (child.pid === undefined) {
    // The binary could not be started at all: Node reports that as an 'error' event.
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new PassthruError('QEMU_FAILED', `cannot run ${opts.binary} for ${name}: ${err.message}`, {
      cause: err,
      hint: 'install QEMU (apt-get install qemu-system-x86) or name the binary in <emulator>',
    });
  }
  let exit: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  child.unref();

  const started = performance.now();
  for (;;) {
    if (exit !== undefined) throw await earlyExit(name, exit, opts.logFile);
    const left = timeoutMs - (performance.now() - started);
    if (left <= 0) {
      if (child.pid !== undefined) signal(child.pid, 'SIGKILL');
      throw new PassthruError('TIMEOUT', `${name} did not open QMP at ${opts.qmpSocket} within ${timeoutMs} ms`);
    }
    try {
      const qmp = await QmpClient.connect(opts.qmpSocket, {
        name,
        connectTimeoutMs: Math.max(1, Math.min(left, 10_000)),
        clock: opts.clock ?? realClock,
      });
      return new Process(child.pid, qmp, exited, name);
    } catch (err) {
      // Before QEMU listens the socket is missing or refuses; anything else ends the wait too,
      // but only after checking whether QEMU died (its log says why, the socket error does not).
      if (exit !== undefined) throw await earlyExit(name, exit, opts.logFile);
      if (err instanceof PassthruError && err.code === 'TIMEOUT') throw err;
      await sleep(20);
    }
  }
}

export interface AttachOptions {
  readonly pidfile: string;
  readonly qmpSocket: string;
  readonly name?: string;
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

/** Reconnects to a QEMU started by an earlier daemon: checks the pidfile's process is alive and
 *  is the QEMU with this QMP socket (a pid can be reused), then negotiates QMP. */
export async function attachQemu(opts: AttachOptions): Promise<QemuProcess> {
  const name = opts.name ?? 'QEMU';
  const text = await readFile(opts.pidfile, 'utf8').catch(() => undefined);
  const pid = Number.parseInt(text?.trim() ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new PassthruError('QEMU_FAILED', `${name}: no usable pid in ${opts.pidfile}`);
  }
  if (!alive(pid)) throw new PassthruError('QEMU_FAILED', `${name} (pid ${pid}) is no longer running`);
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline !== undefined && !cmdline.includes(opts.qmpSocket)) {
    throw new PassthruError(
      'QEMU_FAILED',
      `${name}: pid ${pid} from ${opts.pidfile} is not the QEMU with QMP at ${opts.qmpSocket}`,
    );
  }
  const qmp = await QmpClient.connect(opts.qmpSocket, {
    name,
    connectTimeoutMs: opts.timeoutMs ?? 10_000,
    clock: opts.clock ?? realClock,
  });
  return new Process(pid, qmp, undefined, name);
}

class Process implements QemuProcess {
  readonly pid: number;
  readonly qmp: QmpClient;
  private readonly exited: Promise<ExitStatus> | undefined;
  private readonly name: string;
  private exitStatus: ExitStatus | undefined;
  private gonePromise: Promise<ExitStatus> | undefined;
  private announced = false;

  constructor(pid: number, qmp: QmpClient, exited: Promise<ExitStatus> | undefined, name: string) {
    this.pid = pid;
    this.qmp = qmp;
    this.name = name;
    this.exited = exited?.then((s) => (this.exitStatus = s));
    if (!exited) void this.watchShutdown();
  }

  /** Not our child: QMP's SHUTDOWN is the only word of how it ends (the loop ends with QMP). */
  private async watchShutdown(): Promise<void> {
    for await (const ev of this.qmp.events()) if (ev.event === 'SHUTDOWN') this.announced = true;
  }

  isAlive(): boolean {
    return this.exitStatus === undefined && alive(this.pid);
  }

  kill(sig: NodeJS.Signals = 'SIGTERM'): void {
    signal(this.pid, sig);
  }

  async waitExit(timeoutMs?: number): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout =
      timeoutMs === undefined
        ? undefined
        : new Promise<undefined>((resolve) => {
            timer = setTimeout(() => {
              resolve(undefined);
            }, timeoutMs);
          });
    try {
      const status = await (timeout ? Promise.race([this.gone(), timeout]) : this.gone());
      if (status === undefined) {
        throw new PassthruError(
          'TIMEOUT',
          `${this.name} (pid ${this.pid}) did not exit within ${String(timeoutMs)} ms`,
        );
      }
      await this.qmp.close();
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Resolves once the process is gone, one promise for every waiter. Our own child reports its
   * exit. A QEMU we attached to is not our child: its QMP socket closing says it is going, then
   * its pid is polled away. The poll's timers do not keep the daemon alive by themselves.
   */
  private gone(): Promise<ExitStatus> {
    this.gonePromise ??=
      this.exited ??
      this.qmp.closed.then(async () => {
        while (alive(this.pid)) await sleep(100, undefined, { ref: false });
        this.exitStatus = { announced: this.announced };
        return this.exitStatus;
      });
    return this.gonePromise;
  }

  async destroy(graceMs = 10_000): Promise<ExitStatus> {
    this.kill('SIGTERM');
    // A stopped QEMU (SIGSTOP, a debugger) acts on SIGTERM only once it runs again, as systemd
    // knows when it sends SIGCONT after SIGTERM.
    this.kill('SIGCONT');
    try {
      return await this.waitExit(graceMs);
    } catch {
      this.kill('SIGKILL');
      return await this.waitExit(5_000);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function earlyExit(name: string, exit: ExitStatus, logFile: string): Promise<PassthruError> {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  const tail = await logTail(logFile);
  return new PassthruError('QEMU_FAILED', `${name} ${how} before QMP was up${tail ? `:\n${tail}` : ''}`, {
    hint: `see ${logFile}`,
  });
}

/** The last lines QEMU wrote, without our own header lines. */
async function logTail(logFile: string, lines = LOG_TAIL_LINES): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const all = text.split('\n').filter((l) => l.trim() !== '');
  const lastStart = all.findLastIndex((l) => l.includes(' starting: '));
  return all
    .slice(lastStart + 1)
    .slice(-lines)
    .join('\n');
}

async function removeIfThere(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

/** A process's CPU time (user + system) in seconds, from /proc/PID/stat; undefined when gone. */
export async function cpuTimeSeconds(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // The command name (field 2) may hold spaces; fields after its closing ')' are plain.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : undefined;
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux architecture passthru runs on. */
const CLOCK_TICKS = 100;
