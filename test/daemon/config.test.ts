import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { PassthruError } from '../../src/conf/error.ts';
import { DEFAULT_CONFIG_FILE, keyLines, resolveConfig } from '../../src/daemon/config/load.ts';
import { helpText, printConfig } from '../../src/daemon/config/print.ts';
import { envOf, SETTING_KEYS, SETTINGS } from '../../src/daemon/config/settings.ts';

/** The config file is given as text: `files` maps a path to its contents, any other path is absent. */
const reader =
  (files: Record<string, string>) =>
  (path: string): string => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
    return text;
  };

const FILE = '/etc/p.conf';

const rejects = (f: () => unknown, message: RegExp, line?: number): void => {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof PassthruError, String(e));
    assert.equal(e.code, 'INVALID_ARG');
    assert.match(e.message, message);
    if (line !== undefined) assert.equal(e.line, line);
    return true;
  });
};

test('precedence: a flag wins over the environment, which wins over the file, which wins over the default', () => {
  const files = reader({ [FILE]: 'socket = "/file.sock"\nspare-root-ports = 3\n' });
  const flag = ['--config', FILE, '--socket', '/flag.sock'];
  const env = { PASSTHRU_SOCKET: '/env.sock' };

  const all = resolveConfig(flag, env, files);
  assert.equal(all.config.socket, '/flag.sock');
  assert.deepEqual(all.sources.socket, { from: 'flag' });

  const noFlag = resolveConfig(['--config', FILE], env, files);
  assert.equal(noFlag.config.socket, '/env.sock');
  assert.deepEqual(noFlag.sources.socket, { from: 'env', name: 'PASSTHRU_SOCKET' });

  const fileOnly = resolveConfig(['--config', FILE], {}, files);
  assert.equal(fileOnly.config.socket, '/file.sock');
  assert.deepEqual(fileOnly.sources.socket, { from: 'file', file: FILE, line: 1 });
  assert.equal(fileOnly.config['spare-root-ports'], 3);
  assert.deepEqual(fileOnly.sources['spare-root-ports'], { from: 'file', file: FILE, line: 2 });
  // The read-only socket's default follows the socket, wherever the socket came from.
  assert.equal(fileOnly.config['socket-ro'], '/file-ro.sock');

  const none = resolveConfig([], {}, reader({}));
  assert.equal(none.config.socket, '/run/passthru/passthru.sock');
  assert.equal(none.config['spare-root-ports'], 1);
  assert.deepEqual(none.sources.socket, { from: 'default' });
  assert.equal(none.file, undefined, 'no file at the default path is no error and no file');
  assert.equal(none.config['socket-group'], undefined);
});

test('the file is --config, else $PASSTHRU_CONFIG, else the default path; "" reads none', () => {
  const files = reader({ [DEFAULT_CONFIG_FILE]: 'host = "sim:/d"\n', '/env.conf': 'host = "sim:/e"\n' });
  assert.equal(resolveConfig([], {}, files).config.host, 'sim:/d');
  assert.equal(resolveConfig([], { PASSTHRU_CONFIG: '/env.conf' }, files).config.host, 'sim:/e');
  assert.equal(resolveConfig(['--config', '/env.conf'], { PASSTHRU_CONFIG: '/x' }, files).file, '/env.conf');
  const unread = resolveConfig(['--config', ''], {}, () => assert.fail('no file is read'));
  assert.equal(unread.config.host, 'linux');
  rejects(
    () => resolveConfig(['--config', '/missing.conf'], {}, files),
    /cannot read the config file \/missing.conf: ENOENT/,
  );
});

test('an unknown key in the file is an error naming the key and its line', () => {
  const text = [
    '# passthrud',
    'host = "sim:/h"',
    'notes = """',
    'socket-rw = "a line of a string, not a key"',
    '"""',
    '',
    'socket-rw = "/x.sock"',
  ].join('\n');
  rejects(
    () => resolveConfig([], { PASSTHRU_CONFIG: FILE }, reader({ [FILE]: text.replace('notes', 'socket-ro') })),
    /^\/etc\/p.conf line 7: unknown key 'socket-rw'$/,
    7,
  );
  rejects(
    () => resolveConfig([], { PASSTHRU_CONFIG: FILE }, reader({ [FILE]: '\n[tls]\ncert = "c.pem"\n' })),
    /line 2: unknown key 'tls'/,
    2,
  );
  rejects(
    () => resolveConfig([], { PASSTHRU_CONFIG: FILE }, reader({ [FILE]: 'toString = "an inherited name"\n' })),
    /line 1: unknown key 'toString'/,
  );
  rejects(() => resolveConfig(['--sockt', 'x'], {}, reader({})), /Unknown option '--sockt'/);
});

test('a bad value names the key, where it was given and what is expected; nothing else is taken', () => {
  const file = (text: string) => reader({ [FILE]: text });
  rejects(
    () => resolveConfig(['--config', FILE], {}, file('host = "linux"\n\nspare-root-ports = "2"\n')),
    /^\/etc\/p.conf line 3: spare-root-ports must be a whole number from 0 to 16, not "2"$/,
  );
  rejects(
    () => resolveConfig(['--config', FILE], {}, file('log-level = { a = 1 }\n')),
    /line 1: log-level must be one of fatal, error, warn, info, debug, trace, silent, not a table/,
  );
  rejects(
    () => resolveConfig([], { PASSTHRU_SPARE_ROOT_PORTS: '17' }, reader({})),
    /^PASSTHRU_SPARE_ROOT_PORTS must be a whole number from 0 to 16, not '17'$/,
  );
  rejects(() => resolveConfig(['--host', 'sim:'], {}, reader({})), /^--host must be 'linux' or 'sim:DIR', not 'sim:'$/);
  rejects(() => resolveConfig(['--listen-tls', 'nowhere'], {}, reader({})), /--listen-tls must be ADDR:PORT/);
  rejects(
    () => resolveConfig(['--config', FILE], {}, file('host = "linux"\nsocket = \n')),
    /^\/etc\/p.conf line 2: /,
    2,
  );
});

test('the table drives flags, environment, file keys and --help: each key works in all three', () => {
  const help = helpText();
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    assert.match(help, new RegExp(`--${key} ${s.arg.replace('.', '\\.')} .*\\[${envOf(key)}\\]`));
  }
  // --print-config writes a config file: read back, it gives the same settings.
  const first = resolveConfig(
    ['--socket', '/s.sock', '--socket-group', 'kvm', '--tls-ca', '/ca.pem'],
    { PASSTHRU_SPARE_ROOT_PORTS: '0', PASSTHRU_LOG_LEVEL: 'warn' },
    reader({}),
  );
  const again = resolveConfig([], { PASSTHRU_CONFIG: FILE }, reader({ [FILE]: printConfig(first) }));
  assert.deepEqual(again.config, first.config);
  assert.ok(SETTING_KEYS.every((k) => again.sources[k].from !== 'flag'));
});

test('keyLines finds keys, quoted keys and table headers, not lines inside multi-line strings', () => {
  const lines = keyLines("a = 1\n'b c' = '''\nd = 2\n'''\n  [e]\n\"f\" = 3\n");
  assert.deepEqual(
    [...lines],
    [
      ['a', 1],
      ['b c', 2],
      ['e', 5],
      ['f', 6],
    ],
  );
});

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'passthru-config-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const passthrud = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/daemon/main.ts', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'], ...env },
    // A daemon that wrongly started would never exit on its own.
    timeout: 60_000,
    killSignal: 'SIGKILL',
  });

test('passthrud --print-config shows the effective settings and where each came from', async () => {
  const conf = join(dir, 'passthrud.conf');
  await writeFile(conf, '# a test host\nstate-dir = "/srv/passthru"\nsocket = "/srv/p.sock"\n');
  const r = passthrud(['--config', conf, '--print-config', '--spare-root-ports', '4'], {
    PASSTHRU_SOCKET: '/env/p.sock',
  });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.deepEqual(
    { ...parseToml(r.stdout) },
    {
      host: 'linux',
      'state-dir': '/srv/passthru',
      socket: '/env/p.sock',
      'socket-ro': '/env/p-ro.sock',
      'spare-root-ports': 4,
      'audit-log-max-bytes': 10 * 1024 * 1024,
      qemu: 'qemu-system-x86_64',
      'migration-stall-timeout': 30,
      'migration-incoming-lease': 60,
      'log-level': 'info',
    },
  );
  const line = (key: string) => r.stdout.split('\n').find((l) => l.startsWith(`${key} `) || l.startsWith(`# ${key} `));
  assert.match(line('state-dir') ?? '', new RegExp(`# ${conf} line 2$`));
  assert.match(line('socket') ?? '', /# env PASSTHRU_SOCKET$/);
  assert.match(line('spare-root-ports') ?? '', /# flag$/);
  assert.match(line('host') ?? '', /# default$/);
  assert.match(line('socket-group') ?? '', /^# socket-group = +# unset$/);
});

test('passthrud refuses a bad config file with one line naming the key and line, and does not start', async () => {
  const conf = join(dir, 'bad.conf');
  await writeFile(conf, 'host = "linux"\nsocket_group = "kvm"\n');
  const r = passthrud(['--config', conf, '--socket', join(dir, 'never.sock')]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(
    r.stderr,
    new RegExp(`^passthrud: error: ${conf} line 2: unknown key 'socket_group'\\nhint: the keys are: host, `),
  );
});
