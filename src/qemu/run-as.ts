import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DomainDef } from '../conf/domain/types.ts';
import { PassthruError } from '../conf/error.ts';

/** The unprivileged account QEMU runs as (`passthrud --qemu-user USER[:GROUP]`), libvirt's
 *  qemu.conf user/group. */
export interface QemuUser {
  /** The account's name when it has a passwd entry (its supplementary groups come with it). */
  readonly name?: string;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Resolves USER[:GROUP] through NSS (getent), so an LDAP or systemd-sysusers account works as
 * well as /etc/passwd. A number stands for itself; a number without a passwd entry needs its
 * GROUP. The group defaults to the user's primary group.
 */
export async function resolveQemuUser(spec: string): Promise<QemuUser> {
  const [user = '', group, extra] = spec.split(':');
  if (user === '' || group === '' || extra !== undefined) {
    throw new PassthruError('INVALID_ARG', `--qemu-user must be USER or USER:GROUP, not '${spec}'`);
  }
  const pw = await getent('passwd', user);
  const numeric = /^\d+$/.test(user) ? Number(user) : undefined;
  if (!pw && numeric === undefined) {
    throw new PassthruError('INVALID_ARG', `--qemu-user: no user '${user}' on this host`, {
      hint: 'create it: useradd --system --no-create-home --shell /usr/sbin/nologin passthru-qemu',
    });
  }
  let gid = pw ? Number(pw[3]) : undefined;
  if (group !== undefined) {
    const gr = await getent('group', group);
    gid = gr ? Number(gr[2]) : /^\d+$/.test(group) ? Number(group) : undefined;
    if (gid === undefined) throw new PassthruError('INVALID_ARG', `--qemu-user: no group '${group}' on this host`);
  }
  if (gid === undefined) {
    throw new PassthruError(
      'INVALID_ARG',
      `--qemu-user: uid ${user} has no passwd entry; name its group (${user}:GID)`,
    );
  }
  const uid = pw ? Number(pw[2]) : (numeric ?? 0);
  if (uid === 0) {
    throw new PassthruError('INVALID_ARG', `--qemu-user: '${user}' is root; leave the option out to run QEMU as root`);
  }
  return { ...(pw ? { name: pw[0] } : {}), uid, gid };
}

async function getent(db: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)('getent', [db, key]);
    const line = stdout.split('\n')[0];
    return line ? line.split(':') : undefined;
  } catch (err) {
    // getent exits 2 for "no such key"; anything else (no getent at all) is the host's problem.
    if ((err as { code?: unknown }).code === 2) return undefined;
    throw new PassthruError('HOST_FAILED', `getent ${db} ${key} failed: ${(err as Error).message}`);
  }
}

/**
 * The command that starts QEMU: util-linux's prlimit sets the locked-memory limit (VFIO pins
 * guest RAM at realize, before QMP exists), then setpriv drops to the QEMU user; each execs the
 * next, so the pid is QEMU's. The limit is set while still root: an unprivileged process may
 * not raise its own hard limit, which is why node's spawn({uid, gid}) cannot be used here.
 */
export function launchCommand(
  binary: string,
  argv: readonly string[],
  opts: { readonly memlockBytes?: number | undefined; readonly user?: QemuUser | undefined },
): [string, string[]] {
  let cmd: string[] = [binary, ...argv];
  if (opts.user) {
    const u = opts.user;
    const groups = u.name === undefined ? '--clear-groups' : '--init-groups';
    cmd = ['setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, groups, '--', ...cmd];
  }
  if (opts.memlockBytes !== undefined) {
    cmd = ['prlimit', `--memlock=${opts.memlockBytes}:${opts.memlockBytes}`, '--', ...cmd];
  }
  const [first = binary, ...rest] = cmd;
  return [first, rest];
}

/** The files of a definition QEMU opens by name that are not disk images: file-backed serial
 *  ports (QEMU creates and writes them). */
export function chardevFiles(def: DomainDef): string[] {
  return def.devices.serials.flatMap((s) => (s.type === 'file' && s.path !== undefined ? [s.path] : []));
}
