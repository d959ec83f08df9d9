import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { asPassthruError, type ErrorCode } from '../conf/error.ts';
import type { ErrorBody } from '../protocol/wire.ts';
import type { Action } from './actions.ts';
import { poolRoutes } from './api-pools.ts';
import { deviceRoutes } from './api-devices.ts';
import type { Daemon } from './daemon.ts';

/** Error code -> HTTP status: the one table. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  XML_SYNTAX: 400,
  XML_INVALID: 400,
  CONFIG_UNSUPPORTED: 400,
  INVALID_ARG: 400,
  NO_DOMAIN: 404,
  NO_NETWORK: 404,
  NO_DEVICE: 404,
  DOMAIN_EXISTS: 409,
  OPERATION_INVALID: 409,
  DEVICE_IN_USE: 409,
  DEVICE_NOT_ASSIGNABLE: 409,
  HOST_FAILED: 500,
  QEMU_FAILED: 500,
  TIMEOUT: 504,
  STATE_CORRUPT: 500,
  DAEMON_UNREACHABLE: 502,
  INTERNAL: 500,
};

const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1 } },
} as const;

/** The HTTP API: each route is a thin adapter that turns a request into an Action. */
export function buildApi(daemon: Daemon): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
  const run = (action: Action) => daemon.handle(action);

  app.setErrorHandler((err: unknown, _req, reply: FastifyReply) => {
    const fe = err as { validation?: unknown; statusCode?: number; message?: string };
    if (fe.validation !== undefined || fe.statusCode === 400 || fe.statusCode === 415) {
      const body: ErrorBody = { code: 'INVALID_ARG', message: `bad request: ${fe.message ?? 'invalid body'}` };
      return reply.status(400).send(body);
    }
    const { status, body } = errorReply(err);
    return reply.status(status).send(body);
  });
  serveConsoles(app, daemon);
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { code: 'INVALID_ARG', message: `no such API path: ${req.method} ${req.url}` };
    return reply.status(404).send(body);
  });

  app.get('/domains', () => run({ kind: 'list' }));
  app.post<{ Body: { xml: string } }>(
    '/domains',
    { schema: { body: { type: 'object', required: ['xml'], properties: { xml: { type: 'string' } } } } },
    (req) => run({ kind: 'define', xml: req.body.xml }),
  );
  app.delete<{ Params: { name: string } }>('/domains/:name', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'undefine', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>('/domains/:name/start', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'start', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>('/domains/:name/destroy', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'destroy', name: req.params.name }),
  );
  const waitBody = {
    type: 'object',
    additionalProperties: false,
    properties: { timeoutMs: { type: 'integer', minimum: 0, maximum: 3_600_000 } },
  } as const;
  app.post<{ Params: { name: string }; Body: { timeoutMs?: number } | undefined }>(
    '/domains/:name/shutdown',
    { schema: { params: nameParam, body: waitBody } },
    (req) => run({ kind: 'shutdown', name: req.params.name, timeoutMs: req.body?.timeoutMs ?? DEFAULT_WAIT_MS }),
  );
  app.post<{ Params: { name: string }; Body: { timeoutMs?: number } | undefined }>(
    '/domains/:name/reboot',
    { schema: { params: nameParam, body: waitBody } },
    (req) => run({ kind: 'reboot', name: req.params.name, timeoutMs: req.body?.timeoutMs ?? DEFAULT_WAIT_MS }),
  );
  app.post<{ Params: { name: string } }>('/domains/:name/suspend', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'suspend', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>('/domains/:name/resume', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'resume', name: req.params.name }),
  );
  app.get<{ Params: { name: string } }>('/domains/:name/info', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'dominfo', name: req.params.name }),
  );
  app.post<{ Params: { name: string }; Body: { enable: boolean } }>(
    '/domains/:name/autostart',
    {
      schema: {
        params: nameParam,
        body: {
          type: 'object',
          required: ['enable'],
          additionalProperties: false,
          properties: { enable: { type: 'boolean' } },
        },
      },
    },
    (req) => run({ kind: 'autostart', name: req.params.name, enable: req.body.enable }),
  );
  app.get<{ Params: { name: string }; Querystring: { inactive?: string } }>(
    '/domains/:name/xml',
    { schema: { params: nameParam } },
    (req) => run({ kind: 'dumpxml', name: req.params.name, inactive: req.query.inactive === '1' }),
  );
  app.get<{ Querystring: { cap?: 'pci' | 'net' } }>(
    '/nodedevs',
    { schema: { querystring: { type: 'object', properties: { cap: { type: 'string', enum: ['pci', 'net'] } } } } },
    (req) => run({ kind: 'nodedevList', ...(req.query.cap ? { cap: req.query.cap } : {}) }),
  );
  app.get<{ Params: { name: string } }>('/nodedevs/:name/xml', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'nodedevDumpxml', name: req.params.name }),
  );
  app.get<{ Params: { name: string } }>('/nodedevs/:name/vfs', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'nodedevVfTable', name: req.params.name }),
  );

  app.post<{ Params: { name: string }; Body: { driver?: string } | undefined }>(
    '/nodedevs/:name/detach',
    {
      schema: {
        params: nameParam,
        body: { type: 'object', properties: { driver: { type: 'string', pattern: '^[a-z0-9_-]+$' } } },
      },
    },
    (req) =>
      run({ kind: 'nodedevDetach', name: req.params.name, ...(req.body?.driver ? { driver: req.body.driver } : {}) }),
  );
  app.post<{ Params: { name: string } }>('/nodedevs/:name/reattach', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'nodedevReattach', name: req.params.name }),
  );
  app.post<{ Params: { name: string } }>('/nodedevs/:name/reset', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'nodedevReset', name: req.params.name }),
  );
  app.get<{ Params: { name: string } }>('/nodedevs/:name/check', { schema: { params: nameParam } }, (req) =>
    run({ kind: 'nodedevCheck', name: req.params.name }),
  );
  app.post<{ Params: { name: string }; Body: { numVfs: number; autoprobe?: boolean } }>(
    '/nodedevs/:name/sriov',
    {
      schema: {
        params: nameParam,
        body: {
          type: 'object',
          required: ['numVfs'],
          additionalProperties: false,
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

  app.get<{ Headers: { 'last-event-id'?: string } }>('/events', (req, reply) => {
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

function errorReply(err: unknown): { status: number; body: ErrorBody } {
  const e = asPassthruError(err);
  const body: ErrorBody = {
    code: e.code,
    message: e.message,
    ...(e.hint === undefined ? {} : { hint: e.hint }),
    ...(e.line === undefined ? {} : { line: e.line }),
    ...(e.column === undefined ? {} : { column: e.column }),
  };
  return { status: HTTP_STATUS[e.code], body };
}

/** How long shutdown and reboot wait for the guest when the request does not say. */
const DEFAULT_WAIT_MS = 120_000;

const CONSOLE_PATH = /^\/domains\/([^/?]+)\/console$/;

/**
 * `GET /domains/:name/console` with `Upgrade: passthru-console`: the connection becomes the
 * guest's serial console, raw bytes both ways (101 Switching Protocols), until either side
 * closes. Before the switch, an error is an ordinary JSON error reply.
 */
function serveConsoles(app: FastifyInstance, daemon: Daemon): void {
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
