import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../conf/error.ts';

/** The console log is kept below this size: at the bound it moves to `.1` and starts again, so
 *  the log of one guest never holds more than twice this (libvirt's virtlogd does the same with
 *  max_size, 2 MiB, and backups). */
export const CONSOLE_LOG_MAX_BYTES = 1024 * 1024;

/**
 * A running guest's serial console, held by the daemon for as long as QEMU runs: QEMU serves the
 * port on a unix socket (a chardev `socket,server=on`), the daemon is its one client, writes
 * everything the guest prints to a size-bounded log, and hands it to whoever attaches
 * (`passthru console`): their keystrokes go to the guest, the guest's output to each of them.
 */
export class GuestConsole {
  readonly #socket: Socket;
  readonly #logPath: string;
  readonly #maxBytes: number;
  #log: number;
  #logSize: number;
  readonly #listeners = new Set<(chunk: Buffer) => void>();
  readonly #endListeners = new Set<() => void>();
  #ended = false;

  private constructor(socket: Socket, logPath: string, maxBytes: number) {
    this.#socket = socket;
    this.#logPath = logPath;
    this.#maxBytes = maxBytes;
    this.#log = openSync(logPath, 'a', 0o600);
    this.#logSize = fstatSync(this.#log).size;
    socket.on('data', (chunk: Buffer) => this.#output(chunk));
    socket.on('close', () => this.#end());
    socket.on('error', () => this.#end());
  }

  /** Connects to QEMU's console socket (retrying while QEMU creates it). */
  static async open(socketPath: string, logPath: string, opts: { maxBytes?: number; timeoutMs?: number } = {}) {
    const deadline = performance.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        return new GuestConsole(socket, logPath, opts.maxBytes ?? CONSOLE_LOG_MAX_BYTES);
      } catch (err) {
        if (performance.now() > deadline) {
          throw new PassthruError('QEMU_FAILED', `cannot connect to the guest console at ${socketPath}`, {
            cause: err,
          });
        }
        await sleep(50);
      }
    }
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Receives the guest's output from now on; returns the unsubscribe. */
  subscribe(onOutput: (chunk: Buffer) => void, onEnd: () => void): () => void {
    this.#listeners.add(onOutput);
    this.#endListeners.add(onEnd);
    if (this.#ended) queueMicrotask(onEnd);
    return () => {
      this.#listeners.delete(onOutput);
      this.#endListeners.delete(onEnd);
    };
  }

  /** Keystrokes for the guest. */
  write(data: Buffer): void {
    if (!this.#ended) this.#socket.write(data);
  }

  close(): void {
    this.#socket.destroy();
    this.#end();
  }

  #output(chunk: Buffer): void {
    if (this.#logSize + chunk.length > this.#maxBytes && this.#logSize > 0) this.#rotate();
    writeSync(this.#log, chunk);
    this.#logSize += chunk.length;
    for (const l of this.#listeners) l(chunk);
  }

  #rotate(): void {
    closeSync(this.#log);
    renameSync(this.#logPath, `${this.#logPath}.1`);
    this.#log = openSync(this.#logPath, 'a', 0o600);
    this.#logSize = 0;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    closeSync(this.#log);
    for (const l of this.#endListeners) l();
    this.#listeners.clear();
    this.#endListeners.clear();
  }
}
