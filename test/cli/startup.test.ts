import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSimHost } from '../../src/host/sim/create.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';

/** A command loads what it needs and no more: the modules `passthru <command>` loads, as recorded
 *  by a loader hook, against a real daemon on a sim host. */
let dir = '';
let daemon: TestDaemon;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-startup-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
});
after(async () => {
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
});

async function loads(...args: string[]): Promise<{ stdout: string; modules: string[] }> {
  const record = join(dir, `loads-${args[0]}.txt`);
  await writeFile(record, '');
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './test/helpers/record-loads.ts',
      'src/cli/main.ts',
      '-c',
      daemon.client.target,
      ...args,
    ],
    { encoding: 'utf8', env: { ...process.env, PASSTHRU_RECORD_LOADS: record } },
  );
  assert.equal(r.status, 0, r.stderr);
  const modules = (await readFile(record, 'utf8'))
    .split('\n')
    .filter((u) => (u.startsWith('file://') || u.startsWith('node:')) && !u.includes('/node_modules/tsx/'))
    .map((u) => u.replace(/^file:\/\/.*?\/(src|node_modules)\//, '$1/'));
  return { stdout: r.stdout, modules };
}

/** What no client command may load: the daemon and its web server, the host's kernel code. */
const DAEMON_SIDE =
  /^(src\/(daemon|hostdev|network|host|qemu)\/|node_modules\/(fastify|pino|commander|saxes|libxml2-wasm)\/)/;

test('list loads the command table, the client and the list code, nothing of the daemon', async () => {
  const { stdout, modules } = await loads('list', '--all');
  assert.match(stdout, /^Id\s+Name\s+State\n/);
  assert.deepEqual(
    modules.filter((m) => DAEMON_SIDE.test(m)),
    [],
  );
  // TLS only for a tls:// daemon.
  assert.ok(!modules.includes('node:https') && !modules.includes('node:tls'), modules.join('\n'));
  // No other command's implementation, and no XML reader.
  assert.deepEqual(modules.filter((m) => m.startsWith('src/cli/run/') || m.startsWith('src/conf/')).sort(), [
    'src/cli/run/domain.ts',
    'src/conf/error.ts',
  ]);
});

test('a command that needs more loads it when it runs (the recorder sees it)', async () => {
  const { stdout, modules } = await loads('sim', 'profiles');
  assert.match(stdout, /intel-x710-2port/);
  assert.ok(modules.includes('src/cli/run/sim.ts'), modules.join('\n'));
  assert.ok(modules.some((m) => m.startsWith('src/host/sim/')));
  assert.ok(!modules.includes('src/cli/run/domain.ts'));
});
