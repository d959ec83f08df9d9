import type { FastifyInstance, RouteOptions } from 'fastify';
import { PassthruError } from '../conf/error.ts';
import { type ActionKind, READ_ONLY } from './actions.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The action the route runs: its entry in READ_ONLY says whether the read-only socket serves it. */
    action?: ActionKind;
    /** For a route that runs no action (events, metrics): it only reads. */
    access?: 'read';
  }
}

const EMPTY = { type: 'object', additionalProperties: false, properties: {} } as const;

function closed(schema: unknown): unknown {
  if (schema === undefined) return EMPTY;
  const s = schema as Record<string, unknown>;
  return s['type'] === 'object' && s['additionalProperties'] === undefined ? { ...s, additionalProperties: false } : s;
}

/**
 * What every route gets, including routes added later by anyone: it must say which action it
 * runs (or that it only reads), and its body, path and query are closed schemas, so an unknown
 * field is refused before any handler (an object schema without `additionalProperties` is
 * closed here). A route without a body schema takes no body but `{}`.
 */
export function installRouteRules(app: FastifyInstance, opts: { readonly readOnly: boolean }): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config as { action?: ActionKind; access?: 'read' } | undefined;
    const methods = [route.method].flat();
    if (config?.action === undefined && config?.access !== 'read') {
      throw new PassthruError(
        'INTERNAL',
        `API route ${methods.join(',')} ${route.url} names no action (config.action) and is not marked read-only`,
      );
    }
    const schema = { ...(route.schema ?? {}) } as Record<string, unknown>;
    if (!methods.every((m) => m === 'GET' || m === 'HEAD')) schema['body'] = closed(schema['body']);
    schema['params'] = closed(schema['params']);
    schema['querystring'] = closed(schema['querystring']);
    route.schema = schema;
  });
  // POST /domains/web1/start with no body at all is fine; with a body, it must be `{}`.
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.body === undefined && req.method !== 'GET' && req.method !== 'HEAD') req.body = {};
    done();
  });
  if (opts.readOnly) {
    // onRequest: before the body is even read, so a write with a bad body is still a 403.
    app.addHook('onRequest', (req, _reply, done) => {
      const action = req.routeOptions.config.action;
      if (action === undefined || READ_ONLY[action]) {
        done();
        return;
      }
      done(
        new PassthruError(
          'ACCESS_DENIED',
          `the read-only socket does not serve '${action}': it changes the host or a definition`,
          { hint: 'use the read-write socket (passthru without -r), as root or a member of its group' },
        ),
      );
    });
  }
}
