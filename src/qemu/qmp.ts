import { connect, type Socket } from 'node:net';
import { PassthruError } from '../conf/error.ts';

/** Timers, injectable so tests decide when a timeout fires. */
export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => {
    clearTimeout(h as NodeJS.Timeout);
  },
};

export interface QmpEvent {
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly timestamp?: { readonly seconds: number; readonly microseconds: number };
}

export interface QmpOptions {
  /** Names the peer in errors ("QEMU of domain web1"). */
  readonly name?: string;
  /** For the connect + greeting + qmp_capabilities handshake. */
  readonly connectTimeoutMs?: number;
  /** Default for each command. */
  readonly commandTimeoutMs?: number;
  readonly clock?: Clock;
}

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: PassthruError) => void;
  readonly timer: unknown;
}

type Listener = (ev: QmpEvent) => void;

/**
 * A QMP connection (qemu/docs/interop/qmp-spec): greeting, `qmp_capabilities`, then commands
 * matched to replies by `id`, and asynchronous events. Everything has a timeout. One instance per
 * connection; `close()` ends it and fails whatever is still waiting.
 */
export class QmpClient {
  readonly greeting: Readonly<Record<string, unknown>>;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<Listener>();
  private readonly closeWaiters = new Set<(err: PassthruError) => void>();
  private nextId = 1;
  private closedError: PassthruError | undefined;
  private readonly closedPromise: Promise<void>;
  private resolveClosed: () => void = () => undefined;

  private readonly socket: Socket;
  private readonly opts: Required<Omit<QmpOptions, 'connectTimeoutMs'>>;

  private constructor(
    socket: Socket,
    lines: LineReader,
    greeting: Record<string, unknown>,
    opts: Required<Omit<QmpOptions, 'connectTimeoutMs'>>,
  ) {
    this.socket = socket;
    this.opts = opts;
    this.greeting = greeting;
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    lines.attach(
      (msg) => {
        this.dispatch(msg);
      },
      (why) => {
        this.shutdown(`${why} (${opts.name})`);
      },
    );
  }

  /** Connects to QMP on a unix socket and completes the capabilities handshake. */
  static async connect(path: string, options: QmpOptions = {}): Promise<QmpClient> {
    const opts = {
      name: options.name ?? `QEMU at ${path}`,
      commandTimeoutMs: options.commandTimeoutMs ?? 30_000,
      clock: options.clock ?? realClock,
    };
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const socket = connect(path);
    const lines = new LineReader(socket);
    let timer: unknown;
    const timeout = new Promise<never>((_, reject) => {
      timer = opts.clock.setTimeout(() => {
        reject(new PassthruError('TIMEOUT', `QMP handshake with ${opts.name} did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const greeting = await Promise.race([lines.first(opts.name), timeout]);
      if (typeof greeting['QMP'] !== 'object') {
        throw new PassthruError('QEMU_FAILED', `${opts.name} did not greet as QMP: ${JSON.stringify(greeting)}`);
      }
      const client = new QmpClient(socket, lines, greeting, opts);
      await Promise.race([client.execute('qmp_capabilities'), timeout]);
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      opts.clock.clearTimeout(timer);
    }
  }

  /** Sends one command and resolves with its `return` value; QEMU's error becomes QEMU_FAILED. */
  execute(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    timeoutMs = this.opts.commandTimeoutMs,
  ): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `passthru-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = this.opts.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new PassthruError('TIMEOUT', `${this.opts.name} did not answer '${command}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve, reject, timer });
      const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** Every event from now on (buffered from this call), until the connection closes or the
   *  loop over it ends. */
  events(): AsyncIterableIterator<QmpEvent> {
    const queue: QmpEvent[] = [];
    let waiter: ((r: IteratorResult<QmpEvent, undefined>) => void) | undefined;
    let done = false;
    const stop = (): void => {
      done = true;
      this.listeners.delete(listener);
      this.closeWaiters.delete(stop);
      const w = waiter;
      waiter = undefined;
      w?.({ done: true, value: undefined });
    };
    const listener: Listener = (ev) => {
      const w = waiter;
      waiter = undefined;
      if (w) w({ done: false, value: ev });
      else queue.push(ev);
    };
    this.listeners.add(listener);
    this.closeWaiters.add(stop);
    if (this.closedError) stop();
    const it: AsyncIterableIterator<QmpEvent> = {
      next: () => {
        const ev = queue.shift();
        if (ev !== undefined) return Promise.resolve({ done: false, value: ev });
        if (done) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => {
          waiter = resolve;
        });
      },
      return: () => {
        stop();
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /**
   * The next event `name` (that `predicate` accepts). Only events after the call count: start
   * waiting before the command that causes the event, then await.
   */
  waitForEvent(
    name: string,
    predicate: (ev: QmpEvent) => boolean = () => true,
    timeoutMs = this.opts.commandTimeoutMs,
  ): Promise<QmpEvent> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        this.opts.clock.clearTimeout(timer);
        this.listeners.delete(listener);
        this.closeWaiters.delete(onClose);
      };
      const listener: Listener = (ev) => {
        if (ev.event !== name || !predicate(ev)) return;
        finish();
        resolve(ev);
      };
      const onClose = (err: PassthruError): void => {
        finish();
        reject(err);
      };
      const timer = this.opts.clock.setTimeout(() => {
        finish();
        reject(new PassthruError('TIMEOUT', `no ${name} event from ${this.opts.name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(listener);
      this.closeWaiters.add(onClose);
    });
  }

  /** Resolves when the connection has ended (QEMU quit, or close()). */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  get isClosed(): boolean {
    return this.closedError !== undefined;
  }

  async close(): Promise<void> {
    if (!this.closedError) {
      this.socket.end();
      this.socket.destroy();
      this.shutdown(`QMP connection to ${this.opts.name} was closed`);
    }
    await this.closedPromise;
  }

  private dispatch(msg: Record<string, unknown>): void {
    if (typeof msg['event'] === 'string') {
      const ev: QmpEvent = {
        event: msg['event'],
        data: isRecord(msg['data']) ? msg['data'] : {},
        ...(isTimestamp(msg['timestamp']) ? { timestamp: msg['timestamp'] } : {}),
      };
      for (const l of [...this.listeners]) l(ev);
      return;
    }
    const id = msg['id'];
    const p = typeof id === 'string' ? this.pending.get(id) : undefined;
    if (p === undefined || typeof id !== 'string') return; // a reply to a command that timed out
    this.pending.delete(id);
    this.opts.clock.clearTimeout(p.timer);
    if ('return' in msg) {
      p.resolve(msg['return']);
      return;
    }
    const error = isRecord(msg['error']) ? msg['error'] : {};
    const cls = typeof error['class'] === 'string' ? error['class'] : 'GenericError';
    const desc = typeof error['desc'] === 'string' ? error['desc'] : JSON.stringify(msg);
    p.reject(new QmpCommandError(this.opts.name, p.command, cls, desc));
  }

  private shutdown(why: string): void {
    if (this.closedError) return;
    const err = new PassthruError('QEMU_FAILED', why);
    this.closedError = err;
    for (const [id, p] of this.pending) {
      this.opts.clock.clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new PassthruError('QEMU_FAILED', `${why} before '${p.command}' was answered`));
    }
    for (const w of [...this.closeWaiters]) w(err);
    this.resolveClosed();
  }
}

/** QEMU's error class and description, kept for callers that match on them (DeviceNotFound ...). */
export class QmpCommandError extends PassthruError {
  readonly qmpClass: string;
  readonly qmpDesc: string;
  readonly command: string;

  constructor(name: string, command: string, qmpClass: string, qmpDesc: string) {
    super('QEMU_FAILED', `${name} refused '${command}': ${qmpDesc} (${qmpClass})`);
    this.qmpClass = qmpClass;
    this.qmpDesc = qmpDesc;
    this.command = command;
  }
}

/** Splits the socket's byte stream into JSON objects, one per line (QMP ends each with CRLF).
 *  Holds messages until a client attaches, so nothing between greeting and handshake is lost. */
class LineReader {
  private buffer = '';
  private readonly queue: Record<string, unknown>[] = [];
  private onMessage: ((msg: Record<string, unknown>) => void) | undefined;
  private onEnd: ((why: string) => void) | undefined;
  private ended: string | undefined;
  private firstWaiter: ((m: Record<string, unknown> | undefined) => void) | undefined;

  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line !== '') this.deliver(line);
      }
    });
    socket.on('error', (err) => {
      this.end(`QMP connection failed: ${err.message}`);
    });
    socket.on('close', () => {
      this.end('QMP connection closed');
    });
  }

  attach(onMessage: (msg: Record<string, unknown>) => void, onEnd: (why: string) => void): void {
    this.onMessage = onMessage;
    this.onEnd = onEnd;
    for (const m of this.queue.splice(0)) onMessage(m);
    if (this.ended !== undefined) onEnd(this.ended);
  }

  /** The first message (QEMU's greeting). */
  async first(name: string): Promise<Record<string, unknown>> {
    const queued = this.queue.shift();
    if (queued !== undefined) return queued;
    const m =
      this.ended === undefined
        ? await new Promise<Record<string, unknown> | undefined>((resolve) => {
            this.firstWaiter = resolve;
          })
        : undefined;
    if (m === undefined) throw new PassthruError('QEMU_FAILED', `${this.ended ?? 'QMP connection closed'} (${name})`);
    return m;
  }

  private deliver(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // QMP sends nothing but JSON objects; a line that is not one is not ours to act on
    }
    if (!isRecord(msg)) return;
    if (this.firstWaiter) {
      const w = this.firstWaiter;
      this.firstWaiter = undefined;
      w(msg);
    } else if (this.onMessage) this.onMessage(msg);
    else this.queue.push(msg);
  }

  private end(why: string): void {
    if (this.ended !== undefined) return;
    this.ended = why;
    const w = this.firstWaiter;
    this.firstWaiter = undefined;
    w?.(undefined);
    this.onEnd?.(why);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTimestamp(v: unknown): v is { seconds: number; microseconds: number } {
  return isRecord(v) && typeof v['seconds'] === 'number' && typeof v['microseconds'] === 'number';
}
