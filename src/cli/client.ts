import { request } from 'node:http';
import { isErrorCode, PassthruError } from '../conf/error.ts';
import type { DaemonEvent, ErrorBody } from '../protocol/wire.ts';

/** The API client: JSON over the daemon's unix socket. */
export class Client {
  readonly socket: string;

  constructor(socket: string) {
    this.socket = socket;
  }

  get<T>(path: string): Promise<T> {
    return this.#call<T>('GET', path);
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.#call<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.#call<T>('DELETE', path);
  }

  #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socket,
          method,
          path,
          headers: payload === undefined ? {} : { 'content-type': 'application/json' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
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
      req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(this.socket, err)));
      req.end(payload);
    });
  }

  /** Follows the event stream; resolves when `onEvent` returns true. `onOpen` runs once the
   *  daemon has accepted the stream, so nothing after it can be missed. */
  events(onEvent: (e: DaemonEvent) => boolean, onOpen?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, path: '/events' }, (res) => {
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
      });
      req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(this.socket, err)));
      req.end();
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

function unreachable(socket: string, err: NodeJS.ErrnoException): PassthruError {
  return new PassthruError('DAEMON_UNREACHABLE', `cannot reach passthrud at ${socket}: ${err.code ?? err.message}`, {
    hint: 'start the daemon (passthrud --host sim:DIR --socket PATH) or point -c at its socket',
  });
}
