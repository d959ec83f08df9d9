import { Command, CommanderError } from 'commander';
import { domainCommands } from './commands/domain.ts';
import { nodedevCommands } from './commands/nodedev.ts';
import { offlineCommands } from './commands/offline.ts';
import { quickstartCommand } from './commands/quickstart.ts';
import { simCommands } from './commands/sim.ts';
import { contextOf, type CommandModule } from './context.ts';
import { renderError } from './render.ts';

const MODULES: readonly CommandModule[] = [
  domainCommands,
  nodedevCommands,
  offlineCommands,
  simCommands,
  quickstartCommand,
];

export async function runCli(argv: readonly string[]): Promise<number> {
  const program = new Command('passthru')
    .description('hand PCI devices, above all SR-IOV VFs, to QEMU guests (a client of passthrud)')
    .option('-c, --connect <socket>', 'the daemon API socket (default $PASSTHRU_SOCKET or /run/passthru/passthru.sock)')
    .showSuggestionAfterError(true)
    .exitOverride();
  const ctx = contextOf(program);
  for (const m of MODULES) m.register(program, ctx);
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    // commander has already printed its own usage errors ("unknown command ... Did you mean ...").
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(renderError(err));
    return 1;
  }
}
