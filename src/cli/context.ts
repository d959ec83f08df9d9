import { readFileSync } from 'node:fs';
import { PassthruError } from '../conf/error.ts';
import { Client, type Endpoint, parseEndpoint, type TlsIdentity } from '../protocol/client.ts';
import { DEFAULT_SOCKET, readOnlySocketOf } from '../protocol/wire.ts';

/** What every command gets: the API client for the -c endpoint, and where to print. */
export interface CliContext {
  client(): Client;
  out(text: string): void;
}

/** The endpoint: -c, else $PASSTHRU_SOCKET, else the default; with -r the read-only twin of
 *  that socket ($PASSTHRU_SOCKET_RO when -c does not name one). */
export function endpointOf(connect: string | undefined, readonly = false): Endpoint {
  const env = process.env;
  const endpoint = parseEndpoint(connect ?? env['PASSTHRU_SOCKET'] ?? DEFAULT_SOCKET);
  if (!readonly) return endpoint;
  if (endpoint.kind !== 'unix') {
    throw new PassthruError(
      'INVALID_ARG',
      '-r/--readonly needs a unix socket: a tls:// endpoint has no read-only twin',
    );
  }
  const ro = env['PASSTHRU_SOCKET_RO'];
  return connect === undefined && ro !== undefined && ro !== ''
    ? parseEndpoint(ro)
    : { kind: 'unix', path: readOnlySocketOf(endpoint.path) };
}

export function contextOf(connect: string | undefined, readonly = false): CliContext {
  return {
    client: () => {
      const endpoint = endpointOf(connect, readonly);
      return new Client(endpoint, endpoint.kind === 'tls' ? tlsIdentity() : undefined);
    },
    out: (text) => process.stdout.write(text),
  };
}

/** A tls:// endpoint: the client's certificate, key and CA (PEM files named in the environment). */
function tlsIdentity(): TlsIdentity {
  const read = (name: string): string => {
    const value = process.env[name];
    if (value === undefined || value === '') {
      throw new PassthruError('INVALID_ARG', `a tls:// endpoint needs ${name}`, {
        hint: 'set PASSTHRU_TLS_CERT, PASSTHRU_TLS_KEY and PASSTHRU_TLS_CA to PEM files',
      });
    }
    try {
      return readFileSync(value, 'utf8');
    } catch (err) {
      throw new PassthruError('INVALID_ARG', `cannot read ${name} ${value}: ${(err as NodeJS.ErrnoException).code}`);
    }
  };
  return { cert: read('PASSTHRU_TLS_CERT'), key: read('PASSTHRU_TLS_KEY'), ca: read('PASSTHRU_TLS_CA') };
}
