import { readFile } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { PassthruError } from '../conf/error.ts';
import type { Logger } from '../lib/logger.ts';
import type { TlsIdentity } from '../protocol/client.ts';

/**
 * The daemon's TCP listener with mutual TLS (`--listen-tls ADDR:PORT --tls-cert --tls-key
 * --tls-ca`): the same API as on the unix socket, for another host's daemon (a migration's
 * source) or a remote CLI. Every peer must show a certificate signed by the CA; the same
 * identity is what this daemon shows when it calls another one.
 */
export interface TlsListen {
  readonly host: string;
  readonly port: number;
}

export interface TlsFiles {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
}

export function parseListen(text: string): TlsListen {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m?.[1] || !(port >= 0 && port < 65536)) {
    throw new PassthruError('INVALID_ARG', `invalid --listen-tls '${text}'`, {
      hint: 'use ADDR:PORT, e.g. 0.0.0.0:16514 or [::1]:16514',
    });
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** Reads the PEM files; all three or none (a listener or a client without its CA would trust
 *  nobody, or anybody). */
export async function loadIdentity(files: TlsFiles): Promise<TlsIdentity | undefined> {
  const given = (['cert', 'key', 'ca'] as const).filter((k) => files[k] !== undefined);
  if (given.length === 0) return undefined;
  if (given.length < 3) {
    const missing = (['cert', 'key', 'ca'] as const).filter((k) => files[k] === undefined).map((k) => `--tls-${k}`);
    throw new PassthruError(
      'INVALID_ARG',
      `mutual TLS needs a certificate, its key and the CA: ${missing.join(', ')} missing`,
    );
  }
  const read = async (k: 'cert' | 'key' | 'ca'): Promise<string> => {
    const path = files[k] ?? '';
    const text = await readFile(path, 'utf8').catch((err: unknown) => {
      const why = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new PassthruError('INVALID_ARG', `cannot read --tls-${k} ${path}: ${why}`);
    });
    if (!text.includes('-----BEGIN ')) throw new PassthruError('INVALID_ARG', `--tls-${k} ${path} is not PEM`);
    return text;
  };
  return { cert: await read('cert'), key: await read('key'), ca: await read('ca') };
}

/**
 * Serves the API's HTTP server over mutual TLS as well: each authenticated TLS socket is handed
 * to the same server that answers on the unix socket, so both doors lead to one set of routes.
 * A peer without a certificate signed by the CA fails the handshake and reaches nothing.
 */
export async function serveTls(api: HttpServer, listen: TlsListen, id: TlsIdentity, log: Logger): Promise<TlsServer> {
  const server = createTlsServer(
    { cert: id.cert, key: id.key, ca: id.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    (socket) => api.emit('connection', socket),
  );
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    log.warn({ peer: socket.remoteAddress, err: err.code ?? err.message }, 'TLS client refused');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new PassthruError('INVALID_ARG', `cannot listen on ${listen.host}:${listen.port}: ${err.code ?? err.message}`),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  return server;
}
