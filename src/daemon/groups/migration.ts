import type { HandlerGroup } from '../context.ts';
import { finishIncoming, prepareIncoming } from '../migration/destination.ts';
import { migrateOut } from '../migration/source.ts';

/** Migration: the source's one action, and the destination's two phases (daemon to daemon). */
export const migrationHandlers = {
  migrate: (a, ctx) => migrateOut(a, ctx),
  migrateIncoming: (a, ctx) => prepareIncoming(a, ctx),
  migrateFinish: (a, ctx) => finishIncoming(a, ctx),
} satisfies HandlerGroup<'migrate' | 'migrateIncoming' | 'migrateFinish'>;
