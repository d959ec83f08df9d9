import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { request as httpRequest } from 'node:http';
import type { Duplex } from 'node:stream';
import { isErrorCode, PassthruError } from '../conf/error.ts';
import type { DaemonEvent, ErrorBody } from './wire.ts';

/**
 * The API client: JSON over HTTP, to a daemon's unix socket or, for another host, over TCP
 * with mutual TLS. The CLI uses it, and so does a daemon speaking to another daemon (the
 * migration's destination), which is why it lives here and not in cli/.
 *
 * Endpoints: `unix:/path/to.sock`, a bare path (a unix socket), or `tls://HOST:PORT`.
 */
export type Endpoint =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tls'; readonly host: string; readonly port: number };

/** PEM text of this side's certificate and key, and of the CA that signs the peer's. */
export interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export function parseEndpoint(spec: string): Endpoint {
  if (spec.startsWith('unix:')) {
    const path = spec.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new PassthruError('INVALID_ARG', `endpoint '${spec}' names no socket path`);
    return { kind: 'unix', path };
  }
  if (spec.startsWith('tls://')) {
    const m = /^tls:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(spec);
    const port = Number(m?.[2]);
    if (!m?.[1] || !(port > 0 && port < 65536)) {
      throw new PassthruError('INVALID_ARG', `endpoint '${spec}' is not tls://HOST:PORT`, {
        hint: 'e.g. tls://10.0.0.2:16514 or unix:/run/passthru/passthru.sock',
      });
    }
    return { kind: 'tls', host: m[1].replace(/^\[|\]$/g, ''), port };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new PassthruError('INVALID_ARG', `endpoint '${spec}' uses a transport passthru does not speak`, {
      hint: 'use unix:/path/to.sock or tls://HOST:PORT',
    });
  }
  if (spec === '') throw new PassthruError('INVALID_ARG', 'an empty endpoint names no daemon');
  return { kind: 'unix', path: spec };
}

export function formatEndpoint(e: Endpoint): string {
  return e.kind === 'unix' ? `unix:${e.path}` : `tls://${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
}

export interface CallOptions {
  /** Give up (TIMEOUT) when the daemon has not answered within this many ms. */
  readonly timeoutMs?: number;
}

/** The answer of a route that does not speak JSON (the metrics). */
export interface TextReply {
  readonly text: string;
  readonly contentType: string;
}

export class Client {
  readonly endpoint: Endpoint;
  readonly #tls: TlsIdentity | undefined;

  constructor(endpoint: string | Endpoint, tls?: TlsIdentity) {
    this.endpoint = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
    this.#tls = tls;
    if (this.endpoint.kind === 'tls' && !tls) {
      throw new PassthruError('INVALID_ARG', `${formatEndpoint(this.endpoint)} needs a client certificate`, {
        hint: 'give the certificate, key and CA (passthru --tls-cert/--tls-key/--tls-ca, or PASSTHRU_TLS_CERT/KEY/CA)',
      });
    }
  }

  /** Where this client connects, as the user writes it. */
  get target(): string {
    return formatEndpoint(this.endpoint);
  }

  get<T>(path: string, o?: CallOptions): Promise<T> {
    return this.#call<T>('GET', path, undefined, o);
  }

  /** A GET whose answer is text (the metrics); an error is still the daemon's JSON error. */
  getText(path: string, o?: CallOptions): Promise<TextReply> {
    return this.#call<TextReply>('GET', path, undefined, o, true);
  }

  post<T>(path: string, body: unknown = {}, o?: CallOptions): Promise<T> {
    return this.#call<T>('POST', path, body, o);
  }

  delete<T>(path: string, o?: CallOptions): Promise<T> {
    return this.#call<T>('DELETE', path, undefined, o);
  }

  #request(options: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
    const e = this.endpoint;
    if (e.kind === 'unix') return httpRequest({ ...options, socketPath: e.path }, onResponse);
    const tls = this.#tls;
    if (!tls) throw new PassthruError('INTERNAL', `no TLS identity for ${this.target}`);
    // node:https (and tls under it) loads only for a tls:// daemon: a local command does not
    // pay for it (docs/performance.md).
    return process.getBuiltinModule('node:https').request(
      {
        ...options,
        host: e.host,
        port: e.port,
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        // Daemons are named by address in tls://; the CA is the project's own, so a certificate
        // it signed is the identity that counts, whatever name it carries.
        checkServerIdentity: () => undefined,
        agent: false,
      },
      onResponse,
    );
  }

  /** Opens an upgraded stream (the guest console): resolves with the raw connection once the
   *  daemon has switched protocols, rejects with the daemon's error otherwise. */
  upgrade(path: string, protocol: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const req = this.#request({ path, headers: { connection: 'Upgrade', upgrade: protocol } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            reject(errorFromBody(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
          } catch {
            reject(new PassthruError('INTERNAL', `the daemon refused ${path} with status ${res.statusCode ?? '?'}`));
          }
        });
      });
      req.on('upgrade', (_res, socket: Duplex, head: Buffer) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on('error', (err: NodeJS.ErrnoException) => reject(this.#unreachable(err)));
      req.end();
    });
  }

  #call<T>(method: string, path: string, body: unknown, o: CallOptions = {}, asText = false): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = this.#request(
        { method, path, headers: payload === undefined ? {} : { 'content-type': 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err: NodeJS.ErrnoException) => reject(this.#unreachable(err)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (asText && (res.statusCode ?? 500) < 400) {
              resolve({ text, contentType: res.headers['content-type'] ?? '' } as T);
              return;
            }
            let json: unknown;
            try {
              json = text === '' ? {} : JSON.parse(text);
            } catch {
              reject(
                new PassthruError('INTERNAL', `the daemon answered ${method} ${path} with something that is not JSON`),
              );
              return;
            }
            if ((res.statusCode ?? 500) >= 400) reject(errorFromBody(json));
            else resolve(json as T);
          });
        },
      );
      if (o.timeoutMs !== undefined) {
        req.setTimeout(o.timeoutMs, () => {
          req.destroy(
            new PassthruError(
              'TIMEOUT',
              `passthrud at ${this.target} did not answer ${method} ${path} within ${o.timeoutMs} ms`,
            ),
          );
        });
      }
      req.on('error', (err: NodeJS.ErrnoException) => reject(this.#unreachable(err)));
      req.end(payload);
    });
  }

  /** Follows the event stream; resolves when `onEvent` returns true or the daemon ends it.
   *  `onOpen` runs once the daemon has accepted the stream, so nothing after it can be missed.
   *  `signal` ends the stream from this side. */
  events(onEvent: (e: DaemonEvent) => boolean, onOpen?: () => void, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = this.#request({ path: '/events' }, (res) => {
        onOpen?.();
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let cut: number;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (data && onEvent(JSON.parse(data.slice(6)) as DaemonEvent)) {
              req.destroy();
              resolve();
              return;
            }
          }
        });
        res.on('end', () => resolve());
        res.on('error', () => resolve());
      });
      signal?.addEventListener('abort', () => {
        req.destroy();
        resolve();
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) resolve();
        else reject(this.#unreachable(err));
      });
      req.end();
    });
  }

  #unreachable(err: NodeJS.ErrnoException): PassthruError {
    if (err instanceof PassthruError) return err;
    const why = err.code ?? err.message;
    return new PassthruError('DAEMON_UNREACHABLE', `cannot reach passthrud at ${this.target}: ${why}`, {
      hint:
        this.endpoint.kind === 'unix'
          ? 'start the daemon (passthrud --host sim:DIR --socket PATH) or point -c at its socket'
          : 'check that passthrud listens there (--listen-tls) and that both sides trust the same CA',
    });
  }
}

function errorFromBody(json: unknown): PassthruError {
  const b = json as Partial<ErrorBody>;
  const code = isErrorCode(b.code) ? b.code : 'INTERNAL';
  return new PassthruError(code, typeof b.message === 'string' ? b.message : 'the daemon reported an error', {
    ...(typeof b.hint === 'string' ? { hint: b.hint } : {}),
    ...(typeof b.line === 'number' ? { line: b.line } : {}),
    ...(typeof b.column === 'number' ? { column: b.column } : {}),
  });
}
