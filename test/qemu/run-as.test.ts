import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassthruError } from '../../src/conf/error.ts';
import { launchCommand, resolveQemuUser } from '../../src/qemu/run-as.ts';
import { ensureQemuUser, QEMU_USER } from '../helpers/qemu-user.ts';

const asRoot = process.getuid?.() === 0;
const skip = asRoot ? false : 'needs root (it creates a system user and switches to it)';

test('--qemu-user: a name, a name with a group, numbers; unknown names and root are refused', { skip }, async () => {
  const { uid, gid } = ensureQemuUser();
  assert.deepEqual(await resolveQemuUser(QEMU_USER), { name: QEMU_USER, uid, gid });
  assert.deepEqual(await resolveQemuUser(`${QEMU_USER}:nogroup`), { name: QEMU_USER, uid, gid: 65534 });
  assert.deepEqual(await resolveQemuUser(String(uid)), { name: QEMU_USER, uid, gid });
  assert.deepEqual(await resolveQemuUser('64999:64998'), { uid: 64999, gid: 64998 });
  const refused = async (spec: string, why: RegExp): Promise<void> => {
    await assert.rejects(resolveQemuUser(spec), (e: unknown) => e instanceof PassthruError && why.test(e.message));
  };
  await refused('no-such-user-here', /no user 'no-such-user-here'/);
  await refused(`${QEMU_USER}:no-such-group`, /no group 'no-such-group'/);
  await refused('64999', /has no passwd entry/);
  await refused('root', /is root/);
  await refused('a:b:c', /USER or USER:GROUP/);
});

/** A field of /proc/PID/status ("Uid", "Gid", "Groups"). */
async function status(pid: number, field: string): Promise<string> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return (
    text
      .split('\n')
      .find((l) => l.startsWith(`${field}:`))
      ?.slice(field.length + 1)
      .trim() ?? ''
  );
}

test('launchCommand: the limit is set as root, then the process runs as the QEMU user (same pid)', {
  skip,
}, async () => {
  const { uid, gid } = ensureQemuUser();
  const user = await resolveQemuUser(QEMU_USER);
  const MiB = 1024 ** 2;
  const [bin, argv] = launchCommand('sleep', ['30'], { memlockBytes: 3 * MiB, user });
  assert.equal(bin, 'prlimit');
  const child = spawn(bin, argv, { stdio: 'ignore' });
  try {
    const pid = child.pid ?? 0;
    for (let i = 0; i < 200 && !(await readFile(`/proc/${pid}/cmdline`, 'utf8')).startsWith('sleep'); i++)
      await sleep(20);
    // Real, effective, saved and filesystem ids all the user's: it cannot get root back.
    assert.equal(await status(pid, 'Uid'), [uid, uid, uid, uid].join('\t'));
    assert.equal(await status(pid, 'Gid'), [gid, gid, gid, gid].join('\t'));
    assert.equal(await status(pid, 'CapEff'), '0000000000000000');
    const limits = (await readFile(`/proc/${pid}/limits`, 'utf8')).split('\n').find((l) => l.startsWith('Max locked'));
    assert.deepEqual(limits?.split(/\s{2,}/).slice(1, 3), [String(3 * MiB), String(3 * MiB)]);
  } finally {
    child.kill();
  }
});
