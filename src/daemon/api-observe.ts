import type { FastifyInstance } from 'fastify';
import type { Action, ActionResults } from './actions.ts';
import { METRICS_CONTENT_TYPE } from './metrics.ts';

type Run = <A extends Action>(action: A) => Promise<ActionResults[A['kind']]>;

/** The daemon looked at from outside: Prometheus' scrape and the audit log. Both only read, so
 *  the read-only socket serves them (READ_ONLY). */
export function observeRoutes(app: FastifyInstance, run: Run): void {
  app.get('/metrics', { config: { action: 'metrics' } }, async (_req, reply) => {
    const { text } = await run({ kind: 'metrics' });
    return reply.type(METRICS_CONTENT_TYPE).send(text);
  });
  app.get<{ Querystring: { since?: string; device?: string; limit?: string } }>(
    '/audit',
    {
      config: { action: 'audit' },
      schema: {
        querystring: {
          type: 'object',
          properties: {
            since: { type: 'string', minLength: 1, maxLength: 64 },
            device: { type: 'string', minLength: 1, maxLength: 64 },
            // A query string is text: this one field is read as a whole number.
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,5}$' },
          },
        },
      },
    },
    (req) => {
      const q = req.query;
      return run({
        kind: 'audit',
        ...(q.since === undefined ? {} : { since: q.since }),
        ...(q.device === undefined ? {} : { device: q.device }),
        ...(q.limit === undefined ? {} : { limit: Number(q.limit) }),
      });
    },
  );
}
