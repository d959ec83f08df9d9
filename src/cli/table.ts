import { deviceCommands } from './commands/device.ts';
import { domainCommands } from './commands/domain.ts';
import { guestCommands } from './commands/guest.ts';
import { localCommands, localGroups } from './commands/local.ts';
import { networkCommands } from './commands/network.ts';
import { migrationCommands } from './commands/migration.ts';
import { nodedevCommands } from './commands/nodedev.ts';
import { observeCommands } from './commands/observe.ts';
import { serviceCommands } from './commands/service.ts';
import type { CommandSpec, GroupSpec } from './spec.ts';

/**
 * The command table: every passthru command, in the order of the help. Each subject's entries
 * live in commands/<subject>.ts and load their implementation (run/<subject>.ts) only when run;
 * nothing imported here may pull in more than types and constants (see spec.ts).
 */
export const COMMANDS: readonly CommandSpec[] = [
  ...domainCommands,
  ...guestCommands,
  ...nodedevCommands,
  ...networkCommands,
  ...deviceCommands,
  ...migrationCommands,
  ...observeCommands,
  ...localCommands,
  ...serviceCommands,
];

export const GROUPS: readonly GroupSpec[] = [...localGroups];
