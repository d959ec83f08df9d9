import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsIdentity } from '../../protocol/client.ts';
import type { QmpClient } from '../../qemu/qmp.ts';

export const STREAM_TLS_ID = 'passthru-migration-tls';

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
  id: TlsIdentity,
  endpoint: 'server' | 'client',
): Promise<string> {
  const dir = join(runDir, 'migration-tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'ca-cert.pem'), id.ca, { mode: 0o600 });
  await writeFile(join(dir, `${endpoint}-cert.pem`), id.cert, { mode: 0o600 });
  await writeFile(join(dir, `${endpoint}-key.pem`), id.key, { mode: 0o600 });
  await qmp.execute('object-add', {
    'qom-type': 'tls-creds-x509',
    id: STREAM_TLS_ID,
    dir,
    endpoint,
    'verify-peer': true,
  });
  return STREAM_TLS_ID;
}
