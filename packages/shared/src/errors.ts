/**
 * Typed errors, grouped by what a retry should do (STYLE.md 6). Identify them by class or by
 * `code`, never by message text.
 */

export type ErrorCode =
  | 'VALIDATION'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'FENCED'
  | 'UNKNOWN_MODEL'
  | 'UNKNOWN_TOOL'
  | 'PAYLOAD_TOO_LARGE'
  | 'BUDGET_EXCEEDED'
  | 'PROVIDER_RATE_LIMIT'
  | 'PROVIDER_OVERLOADED'
  | 'PROVIDER_TIMEOUT'
  | 'PROVIDER_AUTH'
  | 'PROVIDER_BAD_REQUEST'
  | 'PROVIDER_UNAVAILABLE'
  | 'PROVIDER_NOT_CONFIGURED'
  | 'ABORTED'
  | 'DEADLINE_EXCEEDED'
  | 'REDIS_SCRIPT'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `nodes[2].model` or `edges[0].type`. */
  readonly path: string;
  readonly message: string;
}

export abstract class GambitError extends Error {
  abstract readonly code: ErrorCode;
  /** `retryable`: try again; `retry-after`: try again after `retryAfterMs`; `non-retryable`: never. */
  abstract readonly retry: 'retryable' | 'retry-after' | 'non-retryable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input. Never retried; `issues` names each field and the reason. */
export class ValidationError extends GambitError {
  readonly code = 'VALIDATION' as const;
  readonly retry = 'non-retryable' as const;
  constructor(
    readonly issues: readonly FieldIssue[],
    message?: string,
  ) {
    super(message ?? issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  }
}

export class NotFoundError extends GambitError {
  readonly code = 'NOT_FOUND' as const;
  readonly retry = 'non-retryable' as const;
}

export class ConflictError extends GambitError {
  readonly code = 'CONFLICT' as const;
  readonly retry = 'non-retryable' as const;
}

/** A result or effect from a cancelled or superseded attempt (M6 fencing). Never retried. */
export class FencedError extends GambitError {
  readonly code = 'FENCED' as const;
  readonly retry = 'non-retryable' as const;
}

export class UnknownModelError extends GambitError {
  readonly code = 'UNKNOWN_MODEL' as const;
  readonly retry = 'non-retryable' as const;
}

export class UnknownToolError extends GambitError {
  readonly code = 'UNKNOWN_TOOL' as const;
  readonly retry = 'non-retryable' as const;
}

export class PayloadTooLargeError extends GambitError {
  readonly code = 'PAYLOAD_TOO_LARGE' as const;
  readonly retry = 'non-retryable' as const;
}

export class BudgetExceededError extends GambitError {
  readonly code = 'BUDGET_EXCEEDED' as const;
  readonly retry = 'non-retryable' as const;
}

export class AbortedError extends GambitError {
  readonly code = 'ABORTED' as const;
  readonly retry = 'non-retryable' as const;
}

/**
 * Issue 10 item 4: an operation ran past its deadline (the node's `timeoutMs`, the tenant's
 * `opTimeoutMs`, capped by the worker's WORKER_MAX_OP_TIMEOUT_MS) and was stopped. Not retried.
 */
export class DeadlineExceededError extends GambitError {
  readonly code = 'DEADLINE_EXCEEDED' as const;
  readonly retry = 'non-retryable' as const;
}

/** Transient provider or infrastructure failure: retry with backoff. */
export class RetryableError extends GambitError {
  readonly retry = 'retryable' as const;
  constructor(
    readonly code: 'PROVIDER_OVERLOADED' | 'PROVIDER_TIMEOUT' | 'PROVIDER_UNAVAILABLE' | 'INTERNAL',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Rate limited: retry no sooner than `retryAfterMs`. */
export class RetryAfterError extends GambitError {
  readonly retry = 'retry-after' as const;
  constructor(
    readonly code: 'PROVIDER_RATE_LIMIT' | 'PROVIDER_OVERLOADED',
    message: string,
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Permanent provider failure (bad key, bad request). */
export class NonRetryableProviderError extends GambitError {
  readonly retry = 'non-retryable' as const;
  constructor(
    readonly code: 'PROVIDER_AUTH' | 'PROVIDER_BAD_REQUEST',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The service cannot answer now (Redis unreachable, a request's deadline passed before its
 * write): nothing was done; the client may retry (HTTP 503, issue 11 D3).
 */
export class UnavailableError extends GambitError {
  readonly code = 'UNAVAILABLE' as const;
  readonly retry = 'retryable' as const;
}

export class RedisScriptError extends GambitError {
  readonly code = 'REDIS_SCRIPT' as const;
  readonly retry = 'non-retryable' as const;
}

export function isGambitError(err: unknown): err is GambitError {
  return err instanceof GambitError;
}

/** An aborted LLM stream, with the text streamed before the abort (to bill fractional waste). */
export class StreamAbortedError extends GambitError {
  readonly code = 'ABORTED' as const;
  readonly retry = 'non-retryable' as const;
  constructor(
    readonly partialText: string,
    message = 'stream aborted',
  ) {
    super(message);
  }
}
