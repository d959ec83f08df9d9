import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { ErrorBody, IncomingRequest, MigrateRequest } from '../protocol/wire.ts';
import { type Action, READ_ONLY } from './actions.ts';
import { installRouteRules } from './api-access.ts';
import { BODY_LIMIT, errorReply, installErrorHandling } from './api-errors.ts';
import { poolRoutes } from './api-pools.ts';
import { deviceRoutes } from './api-devices.ts';
import { observeRoutes } from './api-observe.ts';
import type { Daemon } from './daemon.ts';
import { NAME_PARAM, XML_BODY } from './api-schemas.ts';

export { HTTP_STATUS } from './api-errors.ts';

/** Names of domains and node devices: bounded, so a path cannot carry a novel. */
export interface ApiOptions {
  /** The read-only socket: actions that change anything answer 403 ACCESS_DENIED. */
  readonly readOnly?: boolean;
}

/**
 * The HTTP API: each route is a thin adapter that turns a request into an Action, and says which
 * (config.action) so the read-only socket knows what it may serve (READ_ONLY). Bodies are
 * JSON checked against closed schemas with no type coercion: `{"xml": 123}` is refused naming
 * the field, never turned into a string for the XML reader.
 */
export function buildApi(daemon: Daemon, opts: ApiOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // Longer than any name the schemas allow, so an over-long one is refused naming its field.
    maxParamLength: 1024,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  });
  const run = (action: Action) => daemon.handle(action);
  installErrorHandling(app);
  installRouteRules(app, { readOnly: opts.readOnly === true });
  serveConsoles(app, daemon, opts.readOnly === true);

  app.get('/domains', { config: { action: 'list' } }, () => run({ kind: 'list' }));
  app.get('/version', { config: { action: 'version' } }, () => run({ kind: 'version' }));
  app.post<{ Body: { xml: string } }>(
    '/domains',
    {
      config: { action: 'define' },
      schema: { body: XML_BODY },
    },
    (req) => run({ kind: 'define', xml: req.body.xml }),
  );
  app.delete<{ Params: { name: string } }>(
    '/domains/:name',
    { config: { action: 'undefine' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'undefine', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>(
    '/domains/:name/start',
    { config: { action: 'start' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'start', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>(
    '/domains/:name/destroy',
    { config: { action: 'destroy' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'destroy', name: req.params.name }),
  );
  const waitBody = {
    type: 'object',
    additionalProperties: false,
    properties: { timeoutMs: { type: 'integer', minimum: 0, maximum: 3_600_000 } },
  } as const;
  app.post<{ Params: { name: string }; Body: { timeoutMs?: number } }>(
    '/domains/:name/shutdown',
    { config: { action: 'shutdown' }, schema: { params: NAME_PARAM, body: waitBody } },
    (req) => run({ kind: 'shutdown', name: req.params.name, timeoutMs: req.body.timeoutMs ?? DEFAULT_WAIT_MS }),
  );
  app.post<{ Params: { name: string }; Body: { timeoutMs?: number } }>(
    '/domains/:name/reboot',
    { config: { action: 'reboot' }, schema: { params: NAME_PARAM, body: waitBody } },
    (req) => run({ kind: 'reboot', name: req.params.name, timeoutMs: req.body.timeoutMs ?? DEFAULT_WAIT_MS }),
  );
  app.post<{ Params: { name: string } }>(
    '/domains/:name/suspend',
    { config: { action: 'suspend' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'suspend', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>(
    '/domains/:name/resume',
    { config: { action: 'resume' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'resume', name: req.params.name }),
  );
  app.get<{ Params: { name: string } }>(
    '/domains/:name/info',
    { config: { action: 'dominfo' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'dominfo', name: req.params.name }),
  );
  app.post<{ Params: { name: string }; Body: { enable: boolean } }>(
    '/domains/:name/autostart',
    {
      config: { action: 'autostart' },
      schema: {
        params: NAME_PARAM,
        body: { type: 'object', required: ['enable'], properties: { enable: { type: 'boolean' } } },
      },
    },
    (req) => run({ kind: 'autostart', name: req.params.name, enable: req.body.enable }),
  );
  app.get<{ Params: { name: string }; Querystring: { inactive?: '0' | '1' } }>(
    '/domains/:name/xml',
    {
      config: { action: 'dumpxml' },
      schema: {
        params: NAME_PARAM,
        querystring: { type: 'object', properties: { inactive: { type: 'string', enum: ['0', '1'] } } },
      },
    },
    (req) => run({ kind: 'dumpxml', name: req.params.name, inactive: req.query.inactive === '1' }),
  );
  app.get<{ Querystring: { cap?: 'pci' | 'net' } }>(
    '/nodedevs',
    {
      config: { action: 'nodedevList' },
      schema: { querystring: { type: 'object', properties: { cap: { type: 'string', enum: ['pci', 'net'] } } } },
    },
    (req) => run({ kind: 'nodedevList', ...(req.query.cap ? { cap: req.query.cap } : {}) }),
  );
  app.get<{ Params: { name: string } }>(
    '/nodedevs/:name/xml',
    { config: { action: 'nodedevDumpxml' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'nodedevDumpxml', name: req.params.name }),
  );
  app.get<{ Params: { name: string } }>(
    '/nodedevs/:name/vfs',
    { config: { action: 'nodedevVfTable' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'nodedevVfTable', name: req.params.name }),
  );
  app.post<{ Params: { name: string }; Body: { driver?: string; force?: boolean } }>(
    '/nodedevs/:name/detach',
    {
      config: { action: 'nodedevDetach' },
      schema: {
        params: NAME_PARAM,
        body: {
          type: 'object',
          properties: { driver: { type: 'string', pattern: '^[a-z0-9_-]{1,64}$' }, force: { type: 'boolean' } },
        },
      },
    },
    (req) =>
      run({
        kind: 'nodedevDetach',
        name: req.params.name,
        ...(req.body.driver ? { driver: req.body.driver } : {}),
        ...(req.body.force === true ? { force: true } : {}),
      }),
  );
  app.post<{ Params: { name: string } }>(
    '/nodedevs/:name/reattach',
    { config: { action: 'nodedevReattach' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'nodedevReattach', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>(
    '/nodedevs/:name/reset',
    { config: { action: 'nodedevReset' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'nodedevReset', name: req.params.name }),
  );
  app.get<{ Params: { name: string } }>(
    '/nodedevs/:name/check',
    { config: { action: 'nodedevCheck' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'nodedevCheck', name: req.params.name }),
  );
  app.post<{ Params: { name: string }; Body: { numVfs: number; autoprobe?: boolean } }>(
    '/nodedevs/:name/sriov',
    {
      config: { action: 'nodedevSriov' },
      schema: {
        params: NAME_PARAM,
        body: {
          type: 'object',
          required: ['numVfs'],
          properties: { numVfs: { type: 'integer', minimum: 0, maximum: 65535 }, autoprobe: { type: 'boolean' } },
        },
      },
    },
    (req) =>
      run({
        kind: 'nodedevSriov',
        name: req.params.name,
        numVfs: req.body.numVfs,
        ...(req.body.autoprobe === undefined ? {} : { autoprobe: req.body.autoprobe }),
      }),
  );

  poolRoutes(app, run);
  deviceRoutes(app, run);
  observeRoutes(app, (a) => daemon.handle(a));
  app.post<{ Params: { name: string }; Body: MigrateRequest }>(
    '/domains/:name/migrate',
    {
      config: { action: 'migrate' },
      schema: {
        params: NAME_PARAM,
        body: {
          type: 'object',
          required: ['dest'],
          additionalProperties: false,
          properties: {
            dest: { type: 'string', minLength: 1 },
            live: { type: 'boolean' },
            unplugHostdevs: { type: 'boolean' },
            timeoutS: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
            stallTimeoutS: { type: 'number', minimum: 0, maximum: 86400 },
            bandwidth: { type: 'number', exclusiveMinimum: 0, maximum: 1048576 },
            incomingLeaseS: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
          },
        },
      },
    },
    (req) =>
      run({
        kind: 'migrate',
        name: req.params.name,
        dest: req.body.dest,
        ...(req.body.live === undefined ? {} : { live: req.body.live }),
        ...(req.body.unplugHostdevs === undefined ? {} : { unplugHostdevs: req.body.unplugHostdevs }),
        ...(req.body.timeoutS === undefined ? {} : { timeoutMs: Math.round(req.body.timeoutS * 1000) }),
        ...(req.body.stallTimeoutS === undefined ? {} : { stallTimeoutMs: Math.round(req.body.stallTimeoutS * 1000) }),
        ...(req.body.bandwidth === undefined ? {} : { bandwidth: req.body.bandwidth }),
        ...(req.body.incomingLeaseS === undefined
          ? {}
          : { incomingLeaseMs: Math.round(req.body.incomingLeaseS * 1000) }),
      }),
  );
  app.post<{ Body: { xml: string } }>(
    '/migrations/check',
    {
      config: { action: 'migrateCheck' },
      schema: {
        body: XML_BODY,
      },
    },
    (req) => run({ kind: 'migrateCheck', xml: req.body.xml }),
  );
  app.post<{ Body: IncomingRequest }>(
    '/migrations/incoming',
    {
      config: { action: 'migrateIncoming' },
      schema: {
        body: {
          type: 'object',
          required: ['xml', 'listenHost', 'tls'],
          additionalProperties: false,
          properties: {
            xml: { type: 'string' },
            listenHost: { type: 'string', pattern: '^[0-9A-Za-z.:-]+$' },
            tls: { type: 'boolean' },
            leaseS: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
          },
        },
      },
    },
    (req) =>
      run({
        kind: 'migrateIncoming',
        xml: req.body.xml,
        listenHost: req.body.listenHost,
        tls: req.body.tls,
        ...(req.body.leaseS === undefined ? {} : { leaseMs: Math.round(req.body.leaseS * 1000) }),
      }),
  );
  app.post<{ Params: { name: string } }>(
    '/migrations/:name/renew',
    { config: { action: 'migrateRenew' }, schema: { params: NAME_PARAM } },
    (req) => run({ kind: 'migrateRenew', name: req.params.name }),
  );
  app.post<{ Params: { name: string }; Body: { ok: boolean; why?: string; reason?: 'stalled' | 'lease-lapsed' } }>(
    '/migrations/:name/finish',
    {
      config: { action: 'migrateFinish' },
      schema: {
        params: NAME_PARAM,
        body: {
          type: 'object',
          required: ['ok'],
          additionalProperties: false,
          properties: {
            ok: { type: 'boolean' },
            why: { type: 'string', maxLength: 1000 },
            reason: { enum: ['stalled', 'lease-lapsed'] },
          },
        },
      },
    },
    (req) =>
      run({
        kind: 'migrateFinish',
        name: req.params.name,
        ok: req.body.ok,
        ...(req.body.why === undefined ? {} : { why: req.body.why }),
        ...(req.body.reason === undefined ? {} : { reason: req.body.reason }),
      }),
  );
  app.post<{ Params: { name: string }; Body: { xml: string } }>(
    '/migrations/:name/plug',
    {
      config: { action: 'migratePlug' },
      schema: {
        params: NAME_PARAM,
        body: XML_BODY,
      },
    },
    (req) => run({ kind: 'migratePlug', name: req.params.name, xml: req.body.xml }),
  );

  app.get<{ Headers: { 'last-event-id'?: string } }>('/events', { config: { access: 'read' } }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': passthru events\n\n');
    const last = Number(req.headers['last-event-id']);
    const unsubscribe = daemon.events.subscribe(
      (id, event) => res.write(`id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`),
      Number.isFinite(last) ? last : undefined,
    );
    req.raw.on('close', unsubscribe);
  });
  return app;
}

/** How long shutdown and reboot wait for the guest when the request does not say. */
const DEFAULT_WAIT_MS = 120_000;

const CONSOLE_PATH = /^\/domains\/([^/?]+)\/console$/;

/**
 * `GET /domains/:name/console` with `Upgrade: passthru-console`: the connection becomes the
 * guest's serial console, raw bytes both ways (101 Switching Protocols), until either side
 * closes. Before the switch, an error is an ordinary JSON error reply.
 */
function serveConsoles(app: FastifyInstance, daemon: Daemon, readOnly: boolean): void {
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const m = CONSOLE_PATH.exec(req.url ?? '');
    const refuse = (status: number, body: ErrorBody): void => {
      const text = JSON.stringify(body);
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
    };
    if (!m?.[1] || req.headers.upgrade !== 'passthru-console') {
      refuse(404, { code: 'INVALID_ARG', message: `no such API path for an upgrade: ${req.url ?? ''}` });
      return;
    }
    if (readOnly && !READ_ONLY.console) {
      refuse(403, {
        code: 'ACCESS_DENIED',
        message: "the read-only socket does not serve 'console': it types into the guest",
      });
      return;
    }
    const name = decodeURIComponent(m[1]);
    daemon.handle({ kind: 'console', name }).then(
      (console) => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: passthru-console\r\nconnection: Upgrade\r\n\r\n');
        if (head.length > 0) console.write(head);
        const unsubscribe = console.subscribe(
          (chunk) => socket.write(chunk),
          () => socket.end(),
        );
        socket.on('data', (d: Buffer) => console.write(d));
        socket.on('close', unsubscribe);
        socket.on('error', unsubscribe);
      },
      (err: unknown) => {
        const { status, body } = errorReply(err);
        refuse(status, body);
      },
    );
  });
}
