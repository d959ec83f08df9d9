import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

/** The passthru command as a user meets it: one clear line on stderr, no stack, non-zero exit. */
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-c', join(dir, 'none.sock'), ...args], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const noStack = (s: string): void => assert.doesNotMatch(s, /\n\s+at /);

test('an unreachable daemon: DAEMON_UNREACHABLE names the socket', () => {
  const r = cli('list');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: cannot reach passthrud at .*none\.sock/);
  assert.match(r.stderr, /hint: /);
  noStack(r.stderr);
});

test('bad arguments are refused before anything is sent', () => {
  const missing = cli('define', join(dir, 'nope.xml'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read .*nope\.xml: ENOENT/);
  const cap = cli('nodedev-list', '--cap', 'usb');
  assert.equal(cap.status, 1);
  assert.match(cap.stderr, /invalid --cap 'usb'/);
  const typo = cli('destory', 'x');
  assert.notEqual(typo.status, 0);
  assert.match(typo.stderr, /unknown command 'destory'/);
  assert.match(typo.stderr, /Did you mean destroy/);
  for (const r of [missing, cap, typo]) noStack(r.stderr);
});

test('sim create: a host tree, and clear refusals', async () => {
  const target = join(dir, 'host');
  const ok = cli('sim', 'create', target, '--profile', 'intel-x710-2port');
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok((await readdir(join(target, 'sys', 'bus', 'pci', 'devices'))).includes('0000:06:02.0'));
  const again = cli('sim', 'create', target);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /not empty/);
  const bad = cli('sim', 'create', join(dir, 'other'), '--profile', 'nonesuch');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown sim profile 'nonesuch'/);
  assert.match(bad.stderr, /intel-x710-2port/);
});

const CONF = 'test/data/libvirt-9.0.0/domain/xml2argv';

test('domxml-to-native --offline: vfio-pci with the host address, as libvirt lays out its .args', () => {
  const r = cli('domxml-to-native', '--offline', `${CONF}/hostdev-vfio.xml`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^-device '\{"driver":"vfio-pci","host":"0000:06:12\.1","id":"hostdev0",[^\n]*\}' \\$/m);
  assert.match(r.stdout, /^-name guest=QEMUGuest2,debug-threads=on \\$/m);
});

test('validate: a valid file passes; every problem of a bad one is printed with its line', async () => {
  const ok = cli('validate', `${CONF}/hostdev-vfio.xml`);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /is a valid domain/);
  const file = join(dir, 'bad.xml');
  await writeFile(file, "<domain type='kvm'>\n  <name>x</name>\n  <bogus/>\n</domain>\n");
  const bad = cli('validate', file);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /<bogus> at line 3: element <bogus> is not supported inside <domain>/);
  noStack(bad.stderr);
});
