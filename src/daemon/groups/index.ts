import type { Action, ActionKind, ActionResults } from '../actions.ts';
import type { DaemonContext, Handler } from '../context.ts';
import { deviceHandlers } from './devices.ts';
import { domainHandlers } from './domains.ts';
import { guestHandlers } from './guest.ts';
import { networkHandlers } from './networks.ts';
import { migrationHandlers } from './migration.ts';
import { nodedevHandlers } from './nodedevs.ts';
import { observeHandlers } from './observe.ts';
import { serviceHandlers } from './service.ts';

/**
 * Every action's handler, by group. The compiler checks the table names each ActionKind
 * exactly once. Groups by subject: domains (definitions, lifecycle), nodedevs (host devices);
 * devices (hot-plug), networks (pools) and migration join here as their own modules.
 */
export const HANDLERS = {
  ...domainHandlers,
  ...deviceHandlers,
  ...guestHandlers,
  ...nodedevHandlers,
  ...networkHandlers,
  ...migrationHandlers,
  ...observeHandlers,
  ...serviceHandlers,
} satisfies { readonly [K in ActionKind]: Handler<K> };

/** Runs the handler of the action's kind; whatever it throws comes back as a rejection. */
export async function dispatch<A extends Action>(action: A, ctx: DaemonContext): Promise<ActionResults[A['kind']]> {
  // TypeScript cannot correlate HANDLERS[action.kind] with the action's own type (a union
  // indexed by a union); the table's `satisfies` above is what makes this cast true.
  const handler = HANDLERS[action.kind] as unknown as (
    a: A,
    c: DaemonContext,
  ) => ActionResults[A['kind']] | Promise<ActionResults[A['kind']]>;
  return handler(action, ctx);
}
