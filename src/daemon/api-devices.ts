import type { FastifyInstance } from 'fastify';
import type { Action, ActionResults } from './actions.ts';
import { NAME_PARAM, XML_BODY } from './api-schemas.ts';

type Run = (action: Action) => Promise<ActionResults[keyof ActionResults]>;

const flags = {
  live: { type: 'boolean' },
  config: { type: 'boolean' },
  timeoutMs: { type: 'integer', minimum: 0, maximum: 3_600_000 },
} as const;

interface Flags {
  live?: boolean;
  config?: boolean;
  timeoutMs?: number;
}

/** Only the flags that were sent (the action's optional fields stay absent otherwise). */
function pick(b: Flags | undefined, withTimeout: boolean): Flags {
  return {
    ...(b?.live === undefined ? {} : { live: b.live }),
    ...(b?.config === undefined ? {} : { config: b.config }),
    ...(withTimeout && b?.timeoutMs !== undefined ? { timeoutMs: b.timeoutMs } : {}),
  };
}

/** A device document and the flags: attach takes no timeout, detach does. */
function xmlBody(withTimeout: boolean) {
  return {
    params: NAME_PARAM,
    body: {
      type: 'object',
      required: ['xml'],
      additionalProperties: false,
      properties: {
        xml: { type: 'string' },
        live: flags.live,
        config: flags.config,
        ...(withTimeout ? { timeoutMs: flags.timeoutMs } : {}),
      },
    },
  } as const;
}

/** The routes of the devices group (groups/devices.ts) and domxml-to-native. */
export function deviceRoutes(app: FastifyInstance, run: Run): void {
  app.post<{ Params: { name: string }; Body: Flags & { xml: string } }>(
    '/domains/:name/devices',
    { config: { action: 'attachDevice' }, schema: xmlBody(false) },
    (req) => run({ kind: 'attachDevice', name: req.params.name, xml: req.body.xml, ...pick(req.body, false) }),
  );
  app.post<{ Params: { name: string }; Body: Flags & { xml: string } }>(
    '/domains/:name/devices/detach',
    { config: { action: 'detachDevice' }, schema: xmlBody(true) },
    (req) => run({ kind: 'detachDevice', name: req.params.name, xml: req.body.xml, ...pick(req.body, true) }),
  );
  app.post<{ Params: { name: string; alias: string }; Body: Flags | undefined }>(
    '/domains/:name/devices/:alias/detach',
    {
      config: { action: 'detachDeviceAlias' },
      schema: {
        params: {
          type: 'object',
          required: ['name', 'alias'],
          properties: { name: { type: 'string', minLength: 1 }, alias: { type: 'string', minLength: 1 } },
        },
        body: { type: 'object', additionalProperties: false, properties: flags },
      },
    },
    (req) =>
      run({ kind: 'detachDeviceAlias', name: req.params.name, alias: req.params.alias, ...pick(req.body, true) }),
  );
  app.get<{ Params: { name: string } }>(
    '/domains/:name/interfaces',
    { config: { action: 'domiflist' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'domiflist', name: req.params.name }),
  );
  app.post<{ Body: { xml: string } }>(
    '/native',
    {
      config: { action: 'domxmlToNative' },
      schema: { body: XML_BODY },
    },
    (req) => run({ kind: 'domxmlToNative', xml: req.body.xml }),
  );
}
