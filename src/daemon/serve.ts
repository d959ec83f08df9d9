import { chmod, chown, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PassthruError } from '../conf/error.ts';
import { buildApi } from './api.ts';
import type { Daemon } from './daemon.ts';

export interface SocketOptions {
  /** Read-write: root and, when given, a group (mode 0660), as libvirt's unix_sock_rw_perms. */
  readonly socket: string;
  readonly socketGroup?: string;
  /** Read-only: anyone (mode 0666); only actions that read (READ_ONLY). Empty: none. */
  readonly socketRo: string;
}

/** Serves the API on the read-write socket and, beside it, the read-only one. Node cannot ask
 *  a unix socket's peer who it is (no SO_PEERCRED), so access is the socket files' modes. */
export interface Served {
  /** The read-write API (other listeners, such as TLS for peers, serve the same one). */
  readonly readWrite: FastifyInstance;
  close(): Promise<void>;
}

export async function serveApi(daemon: Daemon, o: SocketOptions): Promise<Served> {
  const gid = o.socketGroup === undefined || o.socketGroup === '' ? undefined : await groupId(o.socketGroup);
  const apps: FastifyInstance[] = [];
  try {
    apps.push(await listen(buildApi(daemon), o.socket, 0o660, gid));
    if (o.socketRo !== '') apps.push(await listen(buildApi(daemon, { readOnly: true }), o.socketRo, 0o666));
  } catch (err) {
    for (const app of apps) await app.close();
    throw err;
  }
  const [readWrite] = apps;
  if (readWrite === undefined) throw new PassthruError('INTERNAL', 'no API socket was opened');
  return {
    readWrite,
    close: async () => {
      for (const app of apps) await app.close();
    },
  };
}

async function listen(app: FastifyInstance, path: string, mode: number, gid?: number): Promise<FastifyInstance> {
  await mkdir(dirname(path), { recursive: true });
  await rm(path, { force: true });
  await app.listen({ path });
  await chmod(path, mode);
  if (gid !== undefined) {
    try {
      await chown(path, process.getuid?.() ?? 0, gid);
    } catch (err) {
      await app.close();
      throw new PassthruError(
        'INVALID_ARG',
        `cannot give the socket ${path} to group ${gid}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  }
  return app;
}

/** A group's id by name (or a number) from /etc/group: node has no getgrnam. */
export async function groupId(group: string, etcGroup = '/etc/group'): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile(etcGroup, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new PassthruError('INVALID_ARG', `socket group '${group}' does not exist on this host (${etcGroup})`, {
    hint: `create it (groupadd ${group}) or choose another with --socket-group`,
  });
}
