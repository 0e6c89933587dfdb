/** The error-status table every hosted adapter must map (docs/providers.md), shared by the adapter tests. */
import { NonRetryableProviderError, RetryableError, RetryAfterError } from '@gambit/shared';

export interface ErrorCase {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly errorType: string;
  readonly expectClass: typeof RetryAfterError | typeof RetryableError | typeof NonRetryableProviderError;
  readonly expectCode: string;
  readonly expectRetryAfterMs?: number;
}

export const ERROR_CASES: readonly ErrorCase[] = [
  { status: 429, headers: { 'retry-after': '7' }, errorType: 'rate_limit_error', expectClass: RetryAfterError, expectCode: 'PROVIDER_RATE_LIMIT', expectRetryAfterMs: 7000 },
  { status: 429, headers: { 'retry-after-ms': '250' }, errorType: 'rate_limit_error', expectClass: RetryAfterError, expectCode: 'PROVIDER_RATE_LIMIT', expectRetryAfterMs: 250 },
  { status: 529, errorType: 'overloaded_error', expectClass: RetryAfterError, expectCode: 'PROVIDER_OVERLOADED', expectRetryAfterMs: 1000 },
  { status: 503, headers: { 'retry-after': '2' }, errorType: 'api_error', expectClass: RetryAfterError, expectCode: 'PROVIDER_OVERLOADED', expectRetryAfterMs: 2000 },
  { status: 500, errorType: 'api_error', expectClass: RetryableError, expectCode: 'PROVIDER_UNAVAILABLE' },
  { status: 401, errorType: 'authentication_error', expectClass: NonRetryableProviderError, expectCode: 'PROVIDER_AUTH' },
  { status: 403, errorType: 'permission_error', expectClass: NonRetryableProviderError, expectCode: 'PROVIDER_AUTH' },
  { status: 400, errorType: 'invalid_request_error', expectClass: NonRetryableProviderError, expectCode: 'PROVIDER_BAD_REQUEST' },
  { status: 404, errorType: 'not_found_error', expectClass: NonRetryableProviderError, expectCode: 'PROVIDER_BAD_REQUEST' },
  { status: 422, errorType: 'invalid_request_error', expectClass: NonRetryableProviderError, expectCode: 'PROVIDER_BAD_REQUEST' },
];
