import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from '../../src/cli/args.ts';
import { helpText } from '../../src/cli/help.ts';
import type { CommandSpec, GroupSpec } from '../../src/cli/spec.ts';
import { COMMANDS, GROUPS } from '../../src/cli/table.ts';

/** The command line against a small table: what each word becomes, and what is refused. */
const noop = (): Promise<void> => Promise.resolve();
const TABLE: CommandSpec[] = [
  { name: 'list', description: 'l', options: [{ flags: '--all', description: 'a' }], run: noop },
  {
    name: 'nodedev-sriov',
    description: 's',
    args: ['<pf>'],
    options: [
      { flags: '--numvfs <n>', description: 'n', required: true },
      { flags: '--state-dir <dir>', description: 'd', default: '/var/lib/passthru' },
    ],
    run: noop,
  },
  { name: 'sim create', description: 'c', args: ['<dir>', '[more...]'], run: noop },
];
const GROUP: GroupSpec[] = [{ name: 'sim', description: 'g' }];
const parse = (...argv: string[]): ReturnType<typeof parseArgs> => parseArgs(argv, TABLE, GROUP);

test('options before or after the command, --x=v, defaults, camel-cased keys', () => {
  const p = parse('-c', '/s', 'nodedev-sriov', 'ens1', '--numvfs=4');
  assert.equal(p.kind, 'run');
  if (p.kind !== 'run') return;
  assert.equal(p.spec.name, 'nodedev-sriov');
  assert.deepEqual(p.args, ['ens1']);
  assert.deepEqual(p.opts, { numvfs: '4', stateDir: '/var/lib/passthru' });
  assert.equal(p.connect, '/s');
  const q = parse('list', '--connect', '/t', '--all');
  assert.ok(q.kind === 'run' && q.connect === '/t' && q.opts['all'] === true);
});

test('a two-word command, a variadic argument, -- ends the options', () => {
  const p = parse('sim', 'create', 'd', '--', '--odd', 'x');
  assert.ok(p.kind === 'run');
  assert.deepEqual(p.args, ['d', '--odd', 'x']);
});

test('help: none, of a command, of a group', () => {
  assert.deepEqual(parse(), { kind: 'help' });
  assert.deepEqual(parse('--help'), { kind: 'help' });
  const cmd = parse('list', '-h');
  assert.ok(cmd.kind === 'help' && cmd.topic?.name === 'list');
  const group = parse('sim');
  assert.ok(group.kind === 'help' && group.topic?.name === 'sim');
  const named = parse('help', 'nodedev-sriov');
  assert.ok(named.kind === 'help' && named.topic?.name === 'nodedev-sriov');
});

test('refusals name the word and the way out', () => {
  const refused = (argv: string[], message: RegExp): void => {
    assert.throws(
      () => parse(...argv),
      (e: unknown) => e instanceof Error && 'code' in e && e.code === 'INVALID_ARG' && message.test(e.message),
      argv.join(' '),
    );
  };
  refused(['lsit'], /^unknown command 'lsit'$/);
  refused(['nodedev-sriov', 'p'], /required option '--numvfs <n>' not specified/);
  refused(['nodedev-sriov', '--numvfs', '2'], /missing required argument 'pf'/);
  refused(['nodedev-sriov', 'p', '--numvfs'], /option '--numvfs <n>' needs a value/);
  refused(['list', 'x'], /too many arguments for 'list'/);
  refused(['list', '--all=1'], /option '--all' takes no value/);
  refused(['list', '--bogus'], /unknown option '--bogus' for 'list'/);
  refused(['--bogus', 'list'], /unknown option '--bogus'/);
  refused(['sim', 'crate'], /unknown command 'sim crate'/);
  try {
    parse('lsit');
  } catch (e) {
    assert.match((e as { hint?: string }).hint ?? '', /Did you mean list\?/);
  }
});

test('the real table: unique names, flags the parser reads, help for every command', () => {
  const names = COMMANDS.map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
  for (const c of COMMANDS) {
    assert.match(helpText(COMMANDS, GROUPS, c), new RegExp(`^Usage: passthru ${c.name}`));
    const group = c.name.includes(' ') ? c.name.split(' ')[0] : undefined;
    if (group)
      assert.ok(
        GROUPS.some((g) => g.name === group),
        `group of ${c.name}`,
      );
  }
  assert.match(helpText(COMMANDS, GROUPS), /^ {2}sim <create\|profiles> +simulated/m);
});
