import type { FastifyInstance } from 'fastify';
import type { PoolKind } from '../protocol/wire.ts';
import type { Action } from './actions.ts';
import { NAME_PARAM, XML_BODY } from './api-schemas.ts';

const PREFIX: Record<PoolKind, string> = { network: '/networks', devicepool: '/devpools' };

/** The routes of networks and device pools (the same for both kinds), domhostdev and
 *  nodedev-release: thin adapters that turn a request into an Action. */
export function poolRoutes(app: FastifyInstance, run: (a: Action) => Promise<unknown>): void {
  for (const pool of ['network', 'devicepool'] as const) {
    const base = PREFIX[pool];
    app.get(base, { config: { action: 'poolList' } }, () => run({ kind: 'poolList', pool }));
    app.post<{ Body: { xml: string } }>(
      base,
      {
        config: { action: 'poolDefine' },
        schema: { body: XML_BODY },
      },
      (req) => run({ kind: 'poolDefine', pool, xml: req.body.xml }),
    );
    app.delete<{ Params: { name: string } }>(
      `${base}/:name`,
      { config: { action: 'poolUndefine' }, schema: { params: NAME_PARAM } },
      (req) => run({ kind: 'poolUndefine', pool, name: req.params.name }),
    );
    app.post<{ Params: { name: string } }>(
      `${base}/:name/start`,
      { config: { action: 'poolStart' }, schema: { params: NAME_PARAM } },
      (req) => run({ kind: 'poolStart', pool, name: req.params.name }),
    );
    app.post<{ Params: { name: string } }>(
      `${base}/:name/destroy`,
      { config: { action: 'poolDestroy' }, schema: { params: NAME_PARAM } },
      (req) => run({ kind: 'poolDestroy', pool, name: req.params.name }),
    );
    app.post<{ Params: { name: string }; Body: { enable: boolean } }>(
      `${base}/:name/autostart`,
      {
        config: { action: 'poolAutostart' },
        schema: {
          params: NAME_PARAM,
          body: {
            type: 'object',
            required: ['enable'],
            additionalProperties: false,
            properties: { enable: { type: 'boolean' } },
          },
        },
      },
      (req) => run({ kind: 'poolAutostart', pool, name: req.params.name, enable: req.body.enable }),
    );
    app.get<{ Params: { name: string }; Querystring: { inactive?: '0' | '1' } }>(
      `${base}/:name/xml`,
      {
        config: { action: 'poolDumpxml' },
        schema: {
          params: NAME_PARAM,
          querystring: { type: 'object', properties: { inactive: { type: 'string', enum: ['0', '1'] } } },
        },
      },
      (req) => run({ kind: 'poolDumpxml', pool, name: req.params.name, inactive: req.query.inactive === '1' }),
    );
    app.get<{ Params: { name: string } }>(
      `${base}/:name/info`,
      { config: { action: 'poolInfo' }, schema: { params: NAME_PARAM } },
      (req) => run({ kind: 'poolInfo', pool, name: req.params.name }),
    );
  }
  portRoutes(app, run);
  app.get<{ Params: { name: string } }>(
    '/domains/:name/hostdevs',
    { config: { action: 'domhostdev' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'domhostdev', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>(
    '/nodedevs/:name/release',
    { config: { action: 'nodedevRelease' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'nodedevRelease', name: req.params.name }),
  );
}

const portParams = {
  type: 'object',
  required: ['name', 'uuid'],
  properties: { name: NAME_PARAM.properties.name, uuid: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

/** A hostdev network's ports (net-port-*): a VF held for an owner without a start. */
function portRoutes(app: FastifyInstance, run: (a: Action) => Promise<unknown>): void {
  app.post<{ Params: { name: string }; Body: { xml: string } }>(
    '/networks/:name/ports',
    {
      config: { action: 'netPortCreate' },
      schema: {
        params: NAME_PARAM,
        body: XML_BODY,
      },
    },
    (req) => run({ kind: 'netPortCreate', network: req.params.name, xml: req.body.xml }),
  );
  app.get<{ Params: { name: string } }>(
    '/networks/:name/ports',
    { config: { action: 'netPortList' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'netPortList', network: req.params.name }),
  );
  app.get<{ Params: { name: string; uuid: string } }>(
    '/networks/:name/ports/:uuid/xml',
    { config: { action: 'netPortDumpxml' }, schema: { params: portParams } },
    (req) => run({ kind: 'netPortDumpxml', network: req.params.name, uuid: req.params.uuid }),
  );
  app.delete<{ Params: { name: string; uuid: string } }>(
    '/networks/:name/ports/:uuid',
    { config: { action: 'netPortDelete' }, schema: { params: portParams } },
    (req) => run({ kind: 'netPortDelete', network: req.params.name, uuid: req.params.uuid }),
  );
}
