import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { flagOf, parseArgs } from '../../src/cli/args.ts';
import { completionScript } from '../../src/cli/run/completion.ts';
import { COMMANDS, GROUPS } from '../../src/cli/table.ts';
import { createSimHost } from '../../src/host/sim/create.ts';
import { Client } from '../../src/protocol/client.ts';
import { PASSTHRU_VERSION } from '../../src/protocol/version.ts';
import { startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { vfDomainXml } from '../helpers/domains.ts';

/**
 * `--json` on every command that prints data, and shell completion, both read off the command
 * table. A command either prints data (then it takes --json, and what it prints with it is
 * JSON), or is listed here with what it prints instead: a new command must choose.
 */
const NOT_DATA: Readonly<Record<string, string>> = {
  ...Object.fromEntries(
    [
      'define',
      'undefine',
      'start',
      'destroy',
      'shutdown',
      'reboot',
      'suspend',
      'resume',
      'autostart',
      'attach-device',
      'detach-device',
      'detach-device-alias',
      'nodedev-detach',
      'nodedev-reattach',
      'nodedev-reset',
      'nodedev-sriov',
      'nodedev-release',
      ...['net', 'devpool'].flatMap((p) =>
        ['define', 'undefine', 'start', 'destroy', 'autostart'].map((c) => `${p}-${c}`),
      ),
      'sim create',
      'net-port-create',
      'net-port-delete',
    ].map((c) => [c, "a change: one sentence saying it is done (virsh's)"]),
  ),
  ...Object.fromEntries(
    ['dumpxml', 'nodedev-dumpxml', 'net-dumpxml', 'devpool-dumpxml', 'net-port-dumpxml'].map((c) => [
      c,
      'an XML document',
    ]),
  ),
  console: 'the terminal, attached to the guest',
  metrics: "Prometheus' text exposition, a format of its own",
  quickstart: 'a narrated demonstration',
  completion: 'a shell script, or names one a line for it',
};

let dir = '';
let daemon: TestDaemon;
let socket = '';
let domainFile = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-json-'));
  await createSimHost(join(dir, 'host'), 'intel-x710-2port');
  daemon = await startDaemon(dir);
  socket = daemon.client.target;
  domainFile = join(dir, 'web1.xml');
  await writeFile(domainFile, vfDomainXml('web1', 1));
  await daemon.client.post('/domains', { xml: vfDomainXml('web1', 1) });
  const net = `<network><name>pool0</name><forward mode='hostdev' managed='yes'><pf dev='enp6s0f1'/></forward></network>`;
  await daemon.client.post('/networks', { xml: net });
  await daemon.client.post('/networks/pool0/start');
  await daemon.client.post('/devpools', {
    xml: `<devicepool managed='yes'><name>dp0</name><select pf='enp6s0f1#0-1'/></devicepool>`,
  });
});
after(async () => {
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Arguments to run each data command with, against the daemon above. */
const SAMPLES = (): Readonly<Record<string, readonly string[]>> => ({
  list: ['--all'],
  dominfo: ['web1'],
  domstate: ['web1', '--reason'],
  domiflist: ['web1'],
  domhostdev: ['web1'],
  'nodedev-list': ['--cap', 'pci'],
  'nodedev-vfs': ['pci_0000_06_00_0'],
  'nodedev-check': ['0000:06:02.3'],
  'net-list': ['--all'],
  'net-info': ['pool0'],
  'net-port-list': ['pool0'],
  'devpool-list': ['--all'],
  'devpool-info': ['dp0'],
  validate: [domainFile],
  'domxml-to-native': [domainFile],
  'sim profiles': [],
  version: [],
  audit: ['--limit', '5'],
});
/** Data commands that need more than this daemon can give (a running guest and a second daemon):
 *  the table check still holds them to --json. */
const NOT_RUN_HERE: Readonly<Record<string, string>> = { migrate: 'a running guest and a destination daemon' };

test('every command that prints data takes --json and prints JSON with it', async () => {
  const samples = SAMPLES();
  for (const spec of COMMANDS) {
    if (NOT_DATA[spec.name] !== undefined) continue;
    const json = (spec.options ?? []).map(flagOf).find((f) => f.long === '--json');
    assert.ok(json && json.value === undefined, `'${spec.name}' prints data: it needs a --json switch`);
    if (NOT_RUN_HERE[spec.name] !== undefined) continue;
    const args = samples[spec.name];
    assert.ok(args, `'${spec.name}' needs sample arguments in this test`);
    const p = parseArgs([...spec.name.split(' '), ...args, '--json'], COMMANDS, GROUPS);
    assert.equal(p.kind, 'run');
    if (p.kind !== 'run') continue;
    let out = '';
    await p.spec.run({
      ctx: { client: () => new Client(socket), out: (t) => (out += t) },
      args: p.args,
      opts: p.opts,
      table: { commands: COMMANDS, groups: GROUPS },
    });
    process.exitCode = undefined;
    let parsed: unknown;
    assert.doesNotThrow(() => (parsed = JSON.parse(out)), `'${spec.name} --json' printed: ${out}`);
    assert.equal(typeof parsed, 'object', `'${spec.name} --json' prints an object or a list`);
  }
  for (const name of [...Object.keys(NOT_DATA), ...Object.keys(NOT_RUN_HERE)]) {
    assert.ok(
      COMMANDS.some((c) => c.name === name),
      `${name} is not a command any more`,
    );
  }
});

test('passthru version --json: the client, the daemon, its QEMU and the host backend', async () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-c', socket, 'version', '--json'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const v = JSON.parse(r.stdout) as {
    client: { version: string };
    daemon: { daemon: string; qemu: { binary: string }; host: { backend: string; kernel: string } };
  };
  assert.equal(v.client.version, PASSTHRU_VERSION);
  assert.equal(v.daemon.daemon, PASSTHRU_VERSION);
  assert.equal(v.daemon.host.backend, 'sim');
  assert.match(v.daemon.host.kernel, /^\d+\.\d+/);
  assert.ok(v.daemon.qemu.binary.length > 0);
  const pkg = JSON.parse(await import('node:fs/promises').then((f) => f.readFile('package.json', 'utf8'))) as {
    version: string;
  };
  assert.equal(PASSTHRU_VERSION, pkg.version, 'src/protocol/version.ts follows package.json');

  const down = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', '-c', join(dir, 'no.sock'), 'version'],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(down.status, 1);
  assert.match(down.stdout, new RegExp(`^Client: +passthru ${PASSTHRU_VERSION.replaceAll('.', '\\.')} `));
  assert.match(down.stdout, /\nDaemon: +not reachable: /);
});

/** Completes `words` (the last one being typed) with the generated bash script. */
function complete(script: string, bin: string, words: string[]): { replies: string[]; stderr: string } {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync(
    'bash',
    [
      '-c',
      `source ${script}; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _passthru; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` } },
  );
  assert.equal(r.status, 0, r.stderr);
  return { replies: r.stdout.split('\n').filter(Boolean).sort(), stderr: r.stderr };
}

test('passthru completion bash completes commands, flags and names asked of the daemon', async () => {
  const bin = join(dir, 'bin');
  const script = join(dir, 'passthru.bash');
  await import('node:fs/promises').then((f) => f.mkdir(bin));
  // `passthru` as the script calls it: this checkout's CLI.
  await writeFile(
    join(bin, 'passthru'),
    `#!/bin/sh\nexec ${process.execPath} --import tsx ${join(process.cwd(), 'src/cli/main.ts')} "$@"\n`,
  );
  await chmod(join(bin, 'passthru'), 0o755);
  await writeFile(script, completionScript('bash', COMMANDS, GROUPS));

  assert.deepEqual(complete(script, bin, ['passthru', 'dom']).replies, [
    'domhostdev',
    'domiflist',
    'dominfo',
    'domstate',
    'domxml-to-native',
  ]);
  assert.deepEqual(complete(script, bin, ['passthru', 'list', '--']).replies, [
    '--all',
    '--connect',
    '--help',
    '--json',
    '--readonly',
  ]);
  assert.deepEqual(complete(script, bin, ['passthru', 'sim', '']).replies, ['create', 'profiles']);
  assert.deepEqual(complete(script, bin, ['passthru', 'completion', '']).replies, ['bash', 'names', 'zsh']);
  assert.deepEqual(complete(script, bin, ['passthru', '-c', socket, 'start', '']).replies, ['web1']);
  assert.deepEqual(complete(script, bin, ['passthru', '-c', socket, 'net-info', '']).replies, ['pool0']);
  assert.deepEqual(complete(script, bin, ['passthru', 'devpool-info', '-c', socket, '']).replies, ['dp0']);
  assert.deepEqual(complete(script, bin, ['passthru', '-c', socket, 'net-port-list', '']).replies, ['pool0']);
  assert.deepEqual(complete(script, bin, ['passthru', '-c', socket, 'nodedev-vfs', 'pci_0000_06_00']).replies, [
    'pci_0000_06_00_0',
    'pci_0000_06_00_1',
  ]);
  // The second argument of attach-device is a file, not a domain: the daemon is not asked.
  assert.deepEqual(
    complete(script, bin, ['passthru', '-c', socket, 'attach-device', 'web1', join(dir, 'web1.')]).replies,
    [domainFile],
  );
  // No daemon: no names and not a word on the terminal.
  const none = complete(script, bin, ['passthru', '-c', join(dir, 'no.sock'), 'start', '']);
  assert.deepEqual(none, { replies: [], stderr: '' });
});

test('the zsh script is the bash one behind bashcompinit, and both pass the shell syntax check', () => {
  const bash = completionScript('bash', COMMANDS, GROUPS);
  const zsh = completionScript('zsh', COMMANDS, GROUPS);
  assert.ok(zsh.startsWith('autoload -U +X bashcompinit && bashcompinit\n'));
  assert.ok(zsh.endsWith(bash.slice(bash.indexOf('\n_passthru_spec'))));
  const r = spawnSync('bash', ['-n'], { input: bash, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
