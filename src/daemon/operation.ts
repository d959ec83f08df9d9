import { type AuditScope, withAuditScope } from '../host/audit.ts';
import type { Action } from './actions.ts';
import type { DaemonMetrics } from './metrics.ts';

/**
 * What the door does around every action, in one place: the action's host changes are
 * audited as its own (with its domain), and it is counted and timed for the metrics. A new
 * action gets both without a line of its own.
 */
export async function aroundAction<T>(metrics: DaemonMetrics, action: Action, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  try {
    const out = await withAuditScope(scopeOf(action), work);
    metrics.operation(action.kind, seconds(), { ok: out });
    return out;
  } catch (err) {
    metrics.operation(action.kind, seconds(), { err });
    throw err;
  }
}

/** Node device and pool actions name a device or a pool; every other `name` is a domain's. */
function scopeOf(action: Action): AuditScope {
  if (action.kind.startsWith('nodedev') || action.kind.startsWith('pool')) {
    return { operation: action.kind, hostWide: true };
  }
  return 'name' in action ? { operation: action.kind, domain: action.name } : { operation: action.kind };
}
