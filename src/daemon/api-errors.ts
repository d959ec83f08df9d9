import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { asPassthruError, type ErrorCode, PassthruError } from '../conf/error.ts';
import type { ErrorBody } from '../protocol/wire.ts';

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
  ACCESS_DENIED: 403,
  REQUEST_TOO_LARGE: 413,
  HOST_FAILED: 500,
  QEMU_FAILED: 500,
  TIMEOUT: 504,
  STATE_CORRUPT: 500,
  DAEMON_UNREACHABLE: 502,
  INTERNAL: 500,
};

/** The largest request body passthrud reads (a domain definition is a few KiB). */
export const BODY_LIMIT = 4 * 1024 * 1024;

interface AjvError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly message?: string;
}

const PART: Record<string, string> = {
  body: 'the request body',
  params: 'the path',
  querystring: 'the query',
  headers: 'the headers',
};

/** One schema failure in words that name the field: "unknown field 'foo' in the request body". */
export function describeValidation(context: string, err: AjvError): string {
  const where = PART[context] ?? context;
  const field = err.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const named = field === '' ? where : `field '${field}' of ${where}`;
  switch (err.keyword) {
    case 'additionalProperties':
      return `unknown field '${[field, String(err.params['additionalProperty'])].filter((x) => x !== '').join('.')}' in ${where}`;
    case 'required':
      return `${where} lacks the field '${String(err.params['missingProperty'])}'`;
    case 'type':
      return `${named} must be ${article(String(err.params['type']))}`;
    case 'maxLength':
      return `${named} is longer than ${String(err.params['limit'])} characters`;
    default:
      return `${named} ${err.message ?? 'is not valid'}`;
  }
}

function article(type: string): string {
  const t = type === 'integer' ? 'whole number' : type;
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

/** Fastify's own failures (schema, JSON, size, media type) as PassthruErrors; others as they are. */
function fromFastify(err: unknown): PassthruError {
  const fe = err as Partial<FastifyError> & { validation?: readonly AjvError[]; validationContext?: string };
  const first = fe.validation?.[0];
  if (first !== undefined) {
    return new PassthruError(
      'INVALID_ARG',
      `bad request: ${describeValidation(fe.validationContext ?? 'body', first)}`,
    );
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PassthruError(
        'REQUEST_TOO_LARGE',
        `the request body is larger than passthrud accepts (${BODY_LIMIT / 1024 / 1024} MiB)`,
      );
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new PassthruError('INVALID_ARG', 'bad request: the body is not JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PassthruError('INVALID_ARG', 'bad request: the body must be JSON (content-type: application/json)');
    default:
      break;
  }
  if (
    typeof fe.statusCode === 'number' &&
    fe.statusCode >= 400 &&
    fe.statusCode < 500 &&
    !(err instanceof PassthruError)
  ) {
    return new PassthruError('INVALID_ARG', `bad request: ${fe.message ?? 'invalid request'}`);
  }
  return asPassthruError(err);
}

/** An error as the API answers it: the status of its code and an ErrorBody. */
export function errorReply(err: unknown): { status: number; body: ErrorBody } {
  const e = fromFastify(err);
  const body: ErrorBody = {
    code: e.code,
    message: e.message,
    ...(e.hint === undefined ? {} : { hint: e.hint }),
    ...(e.line === undefined ? {} : { line: e.line }),
    ...(e.column === undefined ? {} : { column: e.column }),
  };
  return { status: HTTP_STATUS[e.code], body };
}

/** Every error of every route leaves as an ErrorBody with the status of its code. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, _req, reply: FastifyReply) => {
    const { status, body } = errorReply(err);
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { code: 'INVALID_ARG', message: `no such API path: ${req.method} ${req.url}` };
    return reply.status(404).send(body);
  });
}
