import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsIdentity } from '../../src/protocol/client.ts';

/**
 * Certificates for the mutual-TLS tests, made with Debian's openssl (node's crypto can read
 * X.509 but not issue it): a CA, and leaf certificates it signs for 127.0.0.1 that serve as
 * both server and client identity (QEMU's TLS migration checks the address, so it is in the
 * subjectAltName). `rogue` is a second, unrelated CA, for the certificates that must be refused.
 */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCa(dir: string, name: string): { readonly cert: string; readonly key: string } {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

export function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }): CertFiles {
  openssl(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    ],
    dir,
  );
  writeFileSync(
    join(dir, `${name}.ext`),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ],
    dir,
  );
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), ca: ca.cert };
}

export function identity(files: CertFiles): TlsIdentity {
  return {
    cert: readFileSync(files.cert, 'utf8'),
    key: readFileSync(files.key, 'utf8'),
    ca: readFileSync(files.ca, 'utf8'),
  };
}
