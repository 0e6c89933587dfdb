/**
 * Provider-side error types and the one place that maps HTTP failures of hosted providers to
 * the retry groups of shared/errors.ts (STYLE.md 6). Mapping is by status and SDK error class,
 * never by message text; the SDKs' own retries are disabled so the worker's policy governs.
 *
 * | failure                                   | error                                         |
 * |-------------------------------------------|-----------------------------------------------|
 * | 429                                       | RetryAfterError PROVIDER_RATE_LIMIT           |
 * | 529, 503, Anthropic `overloaded_error`    | RetryAfterError PROVIDER_OVERLOADED           |
 * | 500, 502, 504, other 5xx, 408, 409        | RetryableError PROVIDER_UNAVAILABLE           |
 * | timeout                                   | RetryableError PROVIDER_TIMEOUT               |
 * | connection refused/reset, no status       | RetryableError PROVIDER_UNAVAILABLE           |
 * | error event mid-stream (no status)        | by its type: rate_limit_error → RetryAfter,   |
 * |                                           | timeout_error → TIMEOUT, else UNAVAILABLE     |
 * | 401, 403                                  | NonRetryableProviderError PROVIDER_AUTH       |
 * | 400, 404, 413, 422, other 4xx             | NonRetryableProviderError PROVIDER_BAD_REQUEST|
 */
import {
  GambitError,
  NonRetryableProviderError,
  RetryableError,
  RetryAfterError,
  StreamAbortedError,
  type TokenUsage,
  UnknownModelError,
} from '@gambit/shared';

/** Default wait when a 429/529/503 carries no usable retry-after header. */
export const DEFAULT_RETRY_AFTER_MS = 1_000;

/**
 * An aborted stream (M8 fractional waste): the partial text plus the usage to bill for it.
 * Providers report no usage after an abort, so `usage` is counted locally and `usageEstimated`
 * is true. Subclass of StreamAbortedError, so callers that only know the shared class still
 * catch it and read `partialText`.
 */
export class ProviderStreamAbortedError extends StreamAbortedError {
  constructor(
    partialText: string,
    readonly usage: TokenUsage,
    readonly usageEstimated: boolean,
    message = 'stream aborted',
  ) {
    super(partialText, message);
  }
}

/**
 * Issue 10 item 8: a node names `openai`, `anthropic` or `local`, which the worker has no key (or
 * model) for, and the operator has not opted in to the simulated fallback. Never retried: the
 * node fails, and the message names the provider and the variable to set.
 */
export class ProviderNotConfiguredError extends GambitError {
  readonly code = 'PROVIDER_NOT_CONFIGURED' as const;
  readonly retry = 'non-retryable' as const;
  constructor(
    readonly providerName: string,
    readonly envVar: string,
  ) {
    super(
      `provider "${providerName}" is not configured on this worker: set ${envVar}, or set GAMBIT_SIMULATED_FALLBACK=1 to run it on the simulated provider (reported as provider "simulated")`,
    );
  }
}

/** A provider name that is neither built in nor configured. Code UNKNOWN_MODEL, non-retryable. */
export class UnknownProviderError extends UnknownModelError {
  constructor(readonly providerName: string) {
    super(`unknown provider "${providerName}"`);
  }
}

type HeaderSource = Headers | Record<string, string | string[] | undefined> | undefined | null;

function header(headers: HeaderSource, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const v = (headers as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Milliseconds to wait from `retry-after-ms` (OpenAI, Anthropic) or `retry-after` (seconds or
 * an HTTP date), or undefined when neither is present and parseable.
 */
export function parseRetryAfterMs(headers: HeaderSource, nowMs: number = Date.now()): number | undefined {
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return Math.ceil(n);
  }
  const ra = header(headers, 'retry-after');
  if (ra !== undefined) {
    const secs = Number(ra);
    if (ra.trim() !== '' && Number.isFinite(secs) && secs >= 0) return Math.ceil(secs * 1000);
    const at = Date.parse(ra);
    if (Number.isFinite(at)) return Math.max(0, at - nowMs);
  }
  return undefined;
}

export interface HttpFailure {
  readonly provider: string;
  readonly status: number | undefined;
  readonly headers?: HeaderSource;
  /** Provider's machine-readable error type when it has one (Anthropic `overloaded_error`). */
  readonly errorType?: string;
  readonly timeout?: boolean;
  readonly cause?: unknown;
}

/** Maps one hosted-provider failure to its retry group (table in the header). */
export function mapHttpFailure(f: HttpFailure): GambitError {
  const opts = { cause: f.cause };
  const where = `${f.provider}: HTTP ${f.status ?? 'no response'}`;
  if (f.timeout) return new RetryableError('PROVIDER_TIMEOUT', `${f.provider}: request timed out`, opts);
  const s = f.status;
  if (s === 429) {
    return new RetryAfterError('PROVIDER_RATE_LIMIT', `${where} rate limited`, parseRetryAfterMs(f.headers) ?? DEFAULT_RETRY_AFTER_MS, opts);
  }
  if (s === 529 || s === 503 || f.errorType === 'overloaded_error') {
    return new RetryAfterError('PROVIDER_OVERLOADED', `${where} overloaded`, parseRetryAfterMs(f.headers) ?? DEFAULT_RETRY_AFTER_MS, opts);
  }
  if (s === undefined) {
    // No HTTP status: a connection failure, or an error event inside an already-open stream.
    if (f.errorType === 'rate_limit_error') {
      return new RetryAfterError('PROVIDER_RATE_LIMIT', `${f.provider}: rate limited mid-stream`, DEFAULT_RETRY_AFTER_MS, opts);
    }
    if (f.errorType === 'timeout_error') return new RetryableError('PROVIDER_TIMEOUT', `${f.provider}: timed out mid-stream`, opts);
    return new RetryableError('PROVIDER_UNAVAILABLE', `${f.provider}: connection failed or stream error`, opts);
  }
  if (s === 401 || s === 403) return new NonRetryableProviderError('PROVIDER_AUTH', `${where} authentication failed`, opts);
  if (s === 408) return new RetryableError('PROVIDER_TIMEOUT', `${where} request timeout`, opts);
  if (s === 409 || s >= 500) return new RetryableError('PROVIDER_UNAVAILABLE', `${where} server error`, opts);
  return new NonRetryableProviderError('PROVIDER_BAD_REQUEST', `${where} request rejected`, opts);
}
