import type { CliContext } from './context.ts';

/**
 * The shape of the command table. A command is plain data (name, arguments, options, one line
 * of description) plus `run`, which loads its implementation only when that command runs:
 * `passthru list` must not pay for the XML reader, the sim host or QEMU's command line. The help,
 * the parser and `passthru completion` all read the same table.
 *
 * To add a command: put its entry in `commands/<subject>.ts` (import nothing heavy there, only
 * types) and its implementation in `run/<subject>.ts`; `run` is `(inv) => load().then((m) => m.x(inv))`.
 */
export interface CommandSpec {
  /** As typed: `list`, `nodedev-list`, or two words for a group (`sim create`). */
  readonly name: string;
  readonly description: string;
  /** In order: `<file>` is required, `[name]` optional, `<names...>` takes the rest. */
  readonly args?: readonly ArgSpec[];
  readonly options?: readonly OptionSpec[];
  readonly run: (inv: Invocation) => Promise<void>;
}

export type ArgSpec = string | { readonly name: string; readonly description: string };

export interface OptionSpec {
  /** `--json` (a switch) or `--cap <cap>` (takes a value). */
  readonly flags: string;
  readonly description: string;
  readonly default?: string;
  readonly required?: boolean;
}

/** What a command's implementation gets: the parsed command line and the context. */
export interface Invocation {
  readonly ctx: CliContext;
  /** The positional arguments, in the order of `args`. */
  readonly args: readonly string[];
  /** Options by camel-cased long name (`--state-dir` -> `stateDir`): a string, or true for a switch. */
  readonly opts: Readonly<Record<string, string | true | undefined>>;
  /** The command table itself, for the commands about passthru (completion): given by main,
   *  because run/ importing table.ts would close a loop through commands/. */
  readonly table: { readonly commands: readonly CommandSpec[]; readonly groups: readonly GroupSpec[] };
}

/** A group of commands sharing a first word, for the help (`sim` -> `sim create`, `sim profiles`). */
export interface GroupSpec {
  readonly name: string;
  readonly description: string;
}
