/** Retry-after parsing and the status → retry-group table (docs/providers.md). */
import type { NonRetryableProviderError, RetryableError, RetryAfterError } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_AFTER_MS, mapHttpFailure, parseRetryAfterMs } from './errors.js';

describe('parseRetryAfterMs', () => {
  it('prefers retry-after-ms, then retry-after seconds, then an HTTP date', () => {
    expect(parseRetryAfterMs(new Headers({ 'retry-after-ms': '120', 'retry-after': '9' }))).toBe(120);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '1.5' }))).toBe(1500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfterMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }, now)).toBe(30_000);
    expect(parseRetryAfterMs({ 'retry-after': 'Wed, 31 Dec 2025 00:00:00 GMT' }, now)).toBe(0);
  });

  it('ignores missing or garbage values', () => {
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers())).toBeUndefined();
    expect(parseRetryAfterMs({ 'retry-after': 'soon' })).toBeUndefined();
    expect(parseRetryAfterMs({ 'retry-after-ms': '-4' })).toBeUndefined();
  });
});

describe('mapHttpFailure', () => {
  const f = (status: number | undefined, extra: object = {}) => mapHttpFailure({ provider: 'p', status, ...extra });

  it('maps statuses by retry group', () => {
    expect(f(429).retry).toBe('retry-after');
    expect(f(429).code).toBe('PROVIDER_RATE_LIMIT');
    expect((f(429) as RetryAfterError).retryAfterMs).toBe(DEFAULT_RETRY_AFTER_MS);
    expect((f(529) as RetryAfterError).code).toBe('PROVIDER_OVERLOADED');
    expect((f(503) as RetryAfterError).code).toBe('PROVIDER_OVERLOADED');
    expect((f(400, { errorType: 'overloaded_error' }) as RetryAfterError).code).toBe('PROVIDER_OVERLOADED');
    for (const s of [500, 502, 504, 409]) expect((f(s) as RetryableError).code).toBe('PROVIDER_UNAVAILABLE');
    expect((f(408) as RetryableError).code).toBe('PROVIDER_TIMEOUT');
    for (const s of [401, 403]) expect((f(s) as NonRetryableProviderError).code).toBe('PROVIDER_AUTH');
    for (const s of [400, 404, 413, 422]) expect((f(s) as NonRetryableProviderError).code).toBe('PROVIDER_BAD_REQUEST');
    expect((f(undefined) as RetryableError).code).toBe('PROVIDER_UNAVAILABLE');
    expect((f(undefined, { timeout: true }) as RetryableError).code).toBe('PROVIDER_TIMEOUT');
    expect((f(undefined, { errorType: 'rate_limit_error' }) as RetryAfterError).code).toBe('PROVIDER_RATE_LIMIT');
  });
});
