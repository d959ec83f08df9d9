import { spawnSync } from 'node:child_process';

/** The unprivileged account the --qemu-user tests run QEMU as (scripts/setup.sh creates it). */
export const QEMU_USER = 'passthru-qemu';

/** Its uid and gid, creating the account when setup.sh has not (the tests run as root). Two
 *  test files may race to create it: whoever loses finds it made. */
export function ensureQemuUser(): { uid: number; gid: number } {
  const look = (): string[] | undefined => {
    const r = spawnSync('getent', ['passwd', QEMU_USER], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim().split(':') : undefined;
  };
  let pw = look();
  if (!pw) {
    spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', QEMU_USER]);
    pw = look();
  }
  if (!pw) throw new Error(`cannot create the test user ${QEMU_USER} (useradd --system ${QEMU_USER})`);
  return { uid: Number(pw[2]), gid: Number(pw[3]) };
}
