#!/usr/bin/env node
import { parseArgs } from './args.ts';
import { contextOf } from './context.ts';
import { helpText } from './help.ts';
import { renderError } from './render.ts';
import { COMMANDS, GROUPS } from './table.ts';

/** The passthru command. Only the command table is loaded up front; a command's code when it runs. */
async function main(argv: readonly string[]): Promise<void> {
  const p = parseArgs(argv, COMMANDS, GROUPS);
  if (p.kind === 'help') {
    process.stdout.write(helpText(COMMANDS, GROUPS, p.topic));
    return;
  }
  await p.spec.run({
    ctx: contextOf(p.connect, p.readonly === true),
    args: p.args,
    opts: p.opts,
    table: { commands: COMMANDS, groups: GROUPS },
  });
}

main(process.argv.slice(2)).then(
  // A command may answer with another code than 0 (2: an unplug the guest has not finished, a
  // shutdown the guest did not do in time).
  () => process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0),
  (err: unknown) => {
    process.stderr.write(renderError(err));
    process.exit(1);
  },
);
