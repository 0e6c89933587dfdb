/**
 * One error shape for every answer that is not a success (docs/api.md, issue 11 D4):
 * `{ "error": { "code", "message", "field"?, "issues"? } }`. Route handlers, schema validation
 * (fastify-type-provider-zod), fastify's own router and body-parser errors (bad percent-encoding,
 * malformed JSON, an unsupported content type, a body where none is allowed) and unknown routes
 * all map here, so a client never sees fastify's default shape.
 */
import { type ErrorBody, type FieldIssue, isGambitError, ValidationError } from '@gambit/shared';

/** An error with an HTTP status of its own (auth, admission, caps, availability). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** 401: no key, a malformed key, an unknown or revoked key. */
export function unauthenticated(message = 'a valid API key is required: Authorization: Bearer <key>'): HttpError {
  return new HttpError(401, 'UNAUTHENTICATED', message, undefined, { 'www-authenticate': 'Bearer' });
}

/** 403: a tenant key on an operator-only route. */
export function forbidden(message = 'this operation needs the operator key'): HttpError {
  return new HttpError(403, 'FORBIDDEN', message);
}

/** `/a/0/b` (a zod issue path as fastify-type-provider-zod reports it) → `a[0].b`. */
export function pointerToPath(root: string, pointer: string): string {
  let out = root;
  for (const seg of pointer.split('/').filter((s) => s !== '')) {
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out === '' ? '(root)' : out;
}

/**
 * ioredis's answers while Redis cannot be reached by the API's connection (no offline queue, a
 * command timeout; issue 11 D3): the command was not run, or its reply did not come in time.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  return /Stream isn't writeable|enableOfflineQueue|Command timed out|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Failed to refresh slots cache|CLUSTERDOWN/.test(err.message);
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  validation?: Array<{ instancePath?: string; message?: string }>;
  validationContext?: string;
}

function body(code: string, message: string, issues?: readonly FieldIssue[]): ErrorBody {
  const field = issues?.[0]?.path;
  return { error: { code, message, ...(field === undefined ? {} : { field }), ...(issues === undefined ? {} : { issues }) } };
}

export interface HttpErrorAnswer {
  readonly status: number;
  readonly body: ErrorBody;
  readonly headers: Readonly<Record<string, string>>;
}

/** Maps any thrown error to its status, the one error body, and headers (WWW-Authenticate, Retry-After). */
export function toHttpError(err: unknown): HttpErrorAnswer {
  const e = (err ?? {}) as FastifyLikeError;
  if (err instanceof HttpError) {
    const b: ErrorBody = { error: { code: err.code, message: err.message, ...(err.field === undefined ? {} : { field: err.field }) } };
    return { status: err.status, body: b, headers: err.headers };
  }
  if (isRedisUnavailable(err))
    return {
      status: 503,
      body: body('UNAVAILABLE', 'the store (Redis) is unreachable or slow: nothing was done; retry later'),
      headers: { 'retry-after': '1' },
    };
  if (err instanceof ValidationError) return { status: 400, body: body(err.code, err.message, err.issues), headers: {} };
  if (isGambitError(err)) {
    if (err.code === 'UNAVAILABLE') return { status: 503, body: body(err.code, err.message), headers: { 'retry-after': '1' } };
    const status =
      err.code === 'NOT_FOUND' ? 404 : err.code === 'CONFLICT' ? 409 : err.code === 'PAYLOAD_TOO_LARGE' ? 413 : err.retry === 'non-retryable' ? 400 : 503;
    return { status, body: body(err.code, err.message), headers: {} };
  }
  // Schema validation by fastify-type-provider-zod: one issue per field, located by context.
  if (Array.isArray(e.validation)) {
    const issues = e.validation.map((v) => ({ path: pointerToPath('', v.instancePath ?? ''), message: v.message ?? 'invalid' }));
    return { status: 400, body: body('VALIDATION', issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues), headers: {} };
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: body('PAYLOAD_TOO_LARGE', 'request body is larger than BODY_LIMIT_BYTES', [{ path: '(body)', message: 'body too large' }]), headers: {} };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: body('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json', [{ path: '(body)', message: 'unsupported content type' }]), headers: {} };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: body('VALIDATION', 'the content type is application/json but the body is empty', [{ path: '(body)', message: 'empty JSON body' }]), headers: {} };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, body: body('VALIDATION', `malformed body: ${e.message ?? 'invalid JSON'}`, [{ path: '(body)', message: 'malformed JSON' }]), headers: {} };
    case 'FST_ERR_BAD_URL':
      return { status: 400, body: body('VALIDATION', 'the URL is malformed (bad percent-encoding)', [{ path: '(url)', message: 'bad percent-encoding' }]), headers: {} };
    default:
      break;
  }
  if (e.statusCode === 414)
    return { status: 414, body: body('URI_TOO_LONG', 'a path parameter is longer than the router accepts (1000 characters)', [{ path: '(url)', message: 'too long' }]), headers: {} };
  if (e instanceof SyntaxError) return { status: 400, body: body('VALIDATION', `malformed body: ${e.message}`, [{ path: '(body)', message: 'malformed JSON' }]), headers: {} };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // fastify's messages may echo the request: bounded, never the whole of it.
    const msg = (e.message ?? 'bad request').slice(0, 200);
    return { status: e.statusCode, body: body('BAD_REQUEST', msg, [{ path: '(request)', message: msg }]), headers: {} };
  }
  return { status: 500, body: body('INTERNAL', 'internal error'), headers: {} };
}
