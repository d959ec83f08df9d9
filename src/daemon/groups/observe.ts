import type { HandlerGroup } from '../context.ts';
import { stateCounts } from '../metrics-state.ts';

/** The daemon looked at from outside: its metrics and the audit log of its host changes. */
export const observeHandlers = {
  metrics: async (_a, ctx) => ({ text: await ctx.metrics.scrape(() => stateCounts(ctx)) }),
  audit: (a, ctx) =>
    ctx.audit.read({
      ...(a.since === undefined ? {} : { since: a.since }),
      ...(a.device === undefined ? {} : { device: a.device }),
      ...(a.limit === undefined ? {} : { limit: a.limit }),
    }),
} satisfies HandlerGroup<'metrics' | 'audit'>;
