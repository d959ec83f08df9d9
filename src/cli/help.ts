import { argName, GLOBAL_OPTIONS, subcommands } from './args.ts';
import type { CommandSpec, GroupSpec, OptionSpec } from './spec.ts';

const ABOUT = 'hand PCI devices, above all SR-IOV VFs, to QEMU guests (a client of passthrud)';

/** The help text of passthru, of one command, or of a group, from the command table. */
export function helpText(
  commands: readonly CommandSpec[],
  groups: readonly GroupSpec[],
  topic?: CommandSpec | GroupSpec,
): string {
  if (topic === undefined) {
    const rows: [string, string][] = [];
    for (const c of commands) {
      const group = groups.find((g) => c.name.startsWith(`${g.name} `));
      if (!group) rows.push([signature(c), c.description]);
      else if (!rows.some(([s]) => s.startsWith(`${group.name} `)))
        rows.push([`${group.name} <${subcommands(group, commands).replace(/, /g, '|')}>`, group.description]);
    }
    return [
      'Usage: passthru [options] <command> [arguments]',
      '',
      ABOUT,
      '',
      'Options:',
      columns(GLOBAL_OPTIONS.map((o) => [o.flags, o.description])),
      '',
      'Commands:',
      columns(rows),
      '',
      "'passthru <command> --help' shows a command's arguments and options.",
      '',
    ].join('\n');
  }
  if (!('run' in topic)) {
    const members = commands.filter((c) => c.name.startsWith(`${topic.name} `));
    return [
      `Usage: passthru ${topic.name} <command>`,
      '',
      topic.description,
      '',
      'Commands:',
      columns(members.map((c) => [signature(c).slice(topic.name.length + 1), c.description])),
      '',
    ].join('\n');
  }
  const described = (topic.args ?? []).filter((a) => typeof a !== 'string');
  return [
    `Usage: passthru ${signature(topic)}`,
    '',
    topic.description,
    ...(described.length > 0 ? ['', 'Arguments:', columns(described.map((a) => [a.name, a.description]))] : []),
    '',
    'Options:',
    columns([...(topic.options ?? []), ...GLOBAL_OPTIONS].map(optionRow)),
    '',
  ].join('\n');
}

function signature(c: CommandSpec): string {
  const args = (c.args ?? []).map(argName);
  return [c.name, ...((c.options ?? []).length > 0 ? ['[options]'] : []), ...args].join(' ');
}

function optionRow(o: OptionSpec): [string, string] {
  const extra = [o.required ? 'required' : '', o.default !== undefined ? `default: ${o.default}` : '']
    .filter(Boolean)
    .join(', ');
  return [o.flags, extra ? `${o.description} (${extra})` : o.description];
}

function columns(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `  ${a.padEnd(width)}  ${b}`).join('\n');
}
