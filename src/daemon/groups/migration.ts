import type { HandlerGroup } from '../context.ts';
import { checkIncoming } from '../migration/check-incoming.ts';
import { finishIncoming, prepareIncoming, renewIncoming } from '../migration/destination.ts';
import { migrateOut } from '../migration/source.ts';
import { plugFromPools } from '../migration/unplug.ts';

/** Migration: the source's one action, and the destination's three phases (daemon to daemon). */
export const migrationHandlers = {
  migrate: (a, ctx) => migrateOut(a, ctx),
  migrateCheck: (a, ctx) => checkIncoming(a, ctx),
  migrateIncoming: (a, ctx) => prepareIncoming(a, ctx),
  migrateRenew: (a, ctx) => renewIncoming(a, ctx),
  migrateFinish: (a, ctx) => finishIncoming(a, ctx),
  migratePlug: (a, ctx) =>
    ctx.domains.locked(a, a.name, async (obj) => ({ devices: await plugFromPools(ctx, obj, a.xml) })),
} satisfies HandlerGroup<
  'migrate' | 'migrateCheck' | 'migrateIncoming' | 'migrateRenew' | 'migrateFinish' | 'migratePlug'
>;
