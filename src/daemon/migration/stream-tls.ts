import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsIdentity } from '../../protocol/client.ts';
import type { QmpClient } from '../../qemu/qmp.ts';

/**
 * The migration stream over TLS, with the daemon's own identity: QEMU's tls-creds-x509 reads
 * its files from a directory by fixed names (ca-cert.pem, server-cert.pem/-key.pem on the
 * destination, client-cert.pem/-key.pem on the source), so they are written into the
 * domain's run directory (0700) and the object is added over QMP. Both sides verify the peer
 * against the CA, as the daemons do on their API.
 */
export async function addStreamTls(
  qmp: QmpClient,
  runDir: string,
  identity: TlsIdentity,
  endpoint: 'server' | 'client',
): Promise<string> {
  const dir = join(runDir, 'migration-tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'ca-cert.pem'), identity.ca, { mode: 0o600 });
  await writeFile(join(dir, `${endpoint}-cert.pem`), identity.cert, { mode: 0o600 });
  await writeFile(join(dir, `${endpoint}-key.pem`), identity.key, { mode: 0o600 });
  // A guest that arrived here holds the server side from then; a second migration of the same
  // QEMU replaces its object.
  const id = `passthru-migration-tls-${endpoint}`;
  await qmp.execute('object-del', { id }).catch(() => undefined);
  await qmp.execute('object-add', {
    'qom-type': 'tls-creds-x509',
    id,
    dir,
    endpoint,
    'verify-peer': true,
  });
  return id;
}
