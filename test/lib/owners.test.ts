import assert from 'node:assert/strict';
import { chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OwnerLedger } from '../../src/lib/owners.ts';

const skip = process.getuid?.() === 0 ? false : 'needs root (chown)';
const QEMU = { uid: 64321, gid: 64322 };

async function owner(path: string): Promise<string> {
  const st = await stat(path);
  return `${st.uid}:${st.gid}`;
}

test('lent paths go back to their recorded owners; a shared one only when its last holder gives it back', {
  skip,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pt-owners-'));
  try {
    const disk = join(dir, 'disk.img');
    const base = join(dir, 'base.img');
    const run = join(dir, 'run');
    await writeFile(disk, 'x');
    await writeFile(base, 'x');
    await chown(base, 1234, 5678); // an owner that is not the daemon's: recorded, not assumed
    await mkdir(run);
    const ledger = await OwnerLedger.open(join(dir, 'owners.json'));
    await ledger.take(
      'web1',
      [{ path: run, recursive: true }, { path: disk }, { path: base }, { path: join(dir, 'gone') }],
      QEMU,
    );
    await ledger.take('web2', [{ path: base }], QEMU);
    for (const p of [run, disk, base]) assert.equal(await owner(p), '64321:64322');
    // What QEMU makes in its run directory is its own, and comes back too.
    await writeFile(join(run, 'qemu.pid'), '1');
    await chown(join(run, 'qemu.pid'), QEMU.uid, QEMU.gid);
    await ledger.give('web1');
    assert.equal(await owner(run), '0:0');
    assert.equal(await owner(join(run, 'qemu.pid')), '0:0');
    assert.equal(await owner(disk), '0:0');
    assert.equal(await owner(base), '64321:64322', 'web2 still reads the base image');
    await ledger.give('web2');
    assert.equal(await owner(base), '1234:5678');
    assert.deepEqual(
      (JSON.parse(await readFile(join(dir, 'owners.json'), 'utf8')) as { entries: unknown[] }).entries,
      [],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a daemon that dies while paths are lent finds them in the ledger and gives them back', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pt-owners-'));
  try {
    const node = join(dir, 'vfio-12');
    await writeFile(node, '');
    await chown(node, 0, 0);
    const file = join(dir, 'owners.json');
    await (await OwnerLedger.open(file)).take('web1/hostdev0', [{ path: node }], QEMU);
    assert.equal(await owner(node), '64321:64322');
    // No give-back: the daemon "died". Its successor reads the same file.
    const again = await OwnerLedger.open(file);
    assert.deepEqual([...again.holders()], ['web1/hostdev0']);
    await again.give('web1/hostdev0');
    assert.equal(await owner(node), '0:0');
    // A path that vanished meanwhile (the group left vfio) is no error.
    await again.take('web1/hostdev0', [{ path: node }], QEMU);
    await rm(node);
    await again.give('web1/hostdev0');
    assert.deepEqual([...(await OwnerLedger.open(file)).holders()], []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
