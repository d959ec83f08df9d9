import { PassthruError } from '../conf/error.ts';
import type { ArgSpec, CommandSpec, GroupSpec, OptionSpec } from './spec.ts';

/**
 * The command line against the command table. A small parser of our own rather than commander:
 * loading commander costs about as much as everything else `passthru list` does before it
 * talks to the daemon (docs/performance.md), and the table is the one truth that help,
 * parsing and completion share. Bad input is an INVALID_ARG error with a hint; nothing runs.
 */

/** Options every command accepts, before or after the command's name. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  {
    flags: '-c, --connect <socket>',
    description: 'the daemon API socket (default $PASSTHRU_SOCKET or /run/passthru/passthru.sock)',
  },
  {
    flags: '-r, --readonly',
    description: 'use the read-only socket (default $PASSTHRU_SOCKET_RO, or the -ro.sock beside the socket)',
  },
  { flags: '-h, --help', description: 'show help for passthru or a command' },
];

export type Parsed =
  | {
      readonly kind: 'run';
      readonly spec: CommandSpec;
      readonly args: string[];
      readonly opts: Opts;
      readonly connect?: string;
      readonly readonly?: true;
    }
  | { readonly kind: 'help'; readonly topic?: CommandSpec | GroupSpec };

type Opts = Record<string, string | true | undefined>;

interface Flag {
  readonly short?: string;
  readonly long: string;
  readonly key: string;
  readonly value?: string;
  readonly spec: OptionSpec;
}

export function flagOf(spec: OptionSpec): Flag {
  const m = /^(?:-(\w), )?--([\w-]+)(?: <([\w|.-]+)>)?$/.exec(spec.flags);
  if (!m?.[2]) throw new PassthruError('INTERNAL', `bad option flags '${spec.flags}' in the command table`);
  return {
    ...(m[1] ? { short: `-${m[1]}` } : {}),
    long: `--${m[2]}`,
    key: m[2].replace(/-(\w)/g, (_, c: string) => c.toUpperCase()),
    ...(m[3] ? { value: m[3] } : {}),
    spec,
  };
}

export function argName(a: ArgSpec): string {
  return typeof a === 'string' ? a : a.name;
}

const usage = (msg: string, hint: string): PassthruError => new PassthruError('INVALID_ARG', msg, { hint });

/** Finds the command named by the first one or two words of `words`. */
function findCommand(
  words: readonly string[],
  commands: readonly CommandSpec[],
  groups: readonly GroupSpec[],
): { spec: CommandSpec; used: number } | { group: GroupSpec } {
  const [first = '', second] = words;
  const two = commands.find((c) => c.name === `${first} ${second}`);
  if (two) return { spec: two, used: 2 };
  const one = commands.find((c) => c.name === first);
  if (one) return { spec: one, used: 1 };
  const group = groups.find((g) => g.name === first);
  if (group) {
    if (second === undefined || second.startsWith('-')) return { group };
    throw usage(`unknown command '${first} ${second}'`, `the '${first}' commands: ${subcommands(group, commands)}`);
  }
  const names = [...commands.filter((c) => !c.name.includes(' ')).map((c) => c.name), ...groups.map((g) => g.name)];
  const near = names.filter((n) => distance(n, first) <= Math.max(1, Math.floor(first.length / 3)));
  throw usage(
    `unknown command '${first}'`,
    near.length > 0 ? `Did you mean ${near.join(' or ')}?` : "'passthru --help' lists the commands",
  );
}

export function subcommands(group: GroupSpec, commands: readonly CommandSpec[]): string {
  return commands
    .filter((c) => c.name.startsWith(`${group.name} `))
    .map((c) => c.name.slice(group.name.length + 1))
    .join(', ');
}

export function parseArgs(
  argv: readonly string[],
  commands: readonly CommandSpec[],
  groups: readonly GroupSpec[],
): Parsed {
  const globals = GLOBAL_OPTIONS.map(flagOf);
  let connect: string | undefined;
  let help = false;
  let readonly = false;
  let i = 0;
  /** Reads a global option at argv[i]; answers whether it was one. */
  const global = (word: string): boolean => {
    const [name, inline] = splitInline(word);
    const f = globals.find((g) => g.long === name || g.short === name);
    if (!f) return false;
    if (f.key === 'help') help = true;
    else if (f.key === 'readonly') readonly = true;
    else connect = inline ?? valueAfter(argv, i++, f);
    return true;
  };

  while (i < argv.length && (argv[i] ?? '').startsWith('-')) {
    const word = argv[i] ?? '';
    if (!global(word)) throw usage(`unknown option '${word}'`, "'passthru --help' lists the options");
    i++;
  }
  const first = argv[i];
  if (first === undefined || first === 'help') {
    if (first === 'help' && argv[i + 1] !== undefined) {
      const found = findCommand(argv.slice(i + 1), commands, groups);
      return { kind: 'help', topic: 'spec' in found ? found.spec : found.group };
    }
    return { kind: 'help' };
  }
  const found = findCommand(argv.slice(i), commands, groups);
  if (!('spec' in found)) return { kind: 'help', topic: found.group };
  const { spec } = found;
  i += found.used;

  const flags = (spec.options ?? []).map(flagOf);
  const opts: Opts = {};
  const args: string[] = [];
  let onlyArgs = false;
  for (; i < argv.length; i++) {
    const word = argv[i] ?? '';
    if (onlyArgs || !word.startsWith('-') || word === '-') {
      args.push(word);
      continue;
    }
    if (word === '--') {
      onlyArgs = true;
      continue;
    }
    const [name, inline] = splitInline(word);
    const f = flags.find((g) => g.long === name || g.short === name);
    if (f) {
      if (f.value === undefined) {
        if (inline !== undefined) throw usage(`option '${f.long}' takes no value`, help_(spec));
        opts[f.key] = true;
      } else {
        opts[f.key] = inline ?? valueAfter(argv, i++, f);
      }
    } else if (!global(word)) {
      throw usage(`unknown option '${word}' for '${spec.name}'`, help_(spec));
    }
  }
  if (help) return { kind: 'help', topic: spec };

  for (const f of flags) {
    if (opts[f.key] === undefined && f.spec.default !== undefined) opts[f.key] = f.spec.default;
    if (opts[f.key] === undefined && f.spec.required) {
      throw usage(`required option '${f.spec.flags}' not specified`, help_(spec));
    }
  }
  const want = (spec.args ?? []).map(argName);
  const required = want.filter((a) => a.startsWith('<')).length;
  const variadic = want.some((a) => a.endsWith('...>') || a.endsWith('...]'));
  const missing = want[args.length];
  if (args.length < required && missing !== undefined) {
    throw usage(`missing required argument '${missing.slice(1, -1)}' for '${spec.name}'`, help_(spec));
  }
  if (!variadic && args.length > want.length) {
    throw usage(
      `too many arguments for '${spec.name}': it takes ${want.length === 0 ? 'none' : want.join(' ')}`,
      help_(spec),
    );
  }
  return {
    kind: 'run',
    spec,
    args,
    opts,
    ...(connect === undefined ? {} : { connect }),
    ...(readonly ? { readonly: true as const } : {}),
  };
}

const help_ = (spec: CommandSpec): string => `'passthru ${spec.name} --help' shows its usage`;

function splitInline(word: string): [string, string | undefined] {
  const eq = word.indexOf('=');
  return word.startsWith('--') && eq > 0 ? [word.slice(0, eq), word.slice(eq + 1)] : [word, undefined];
}

function valueAfter(argv: readonly string[], i: number, f: Flag): string {
  const v = argv[i + 1];
  if (v === undefined) throw usage(`option '${f.spec.flags}' needs a value`, `e.g. ${f.long} <${f.value ?? 'value'}>`);
  return v;
}

/** Edit distance counting a swap of two neighbours as one edit (typos like 'destory'), for "Did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] ?? [])[j] = best;
    }
  }
  return at(a.length, b.length);
}
