/**
 * What the hosted adapters (OpenAI-compatible, Anthropic) share: the aborted-stream error with
 * locally counted usage (M8: providers report no usage after an abort), and the mapping of an
 * SDK's error classes to `mapHttpFailure`. Both SDKs (Stainless-generated) have the same error
 * class shapes, so the mapping takes the classes as arguments and matches by class and status.
 */
import { type GambitError, isGambitError, type LlmRequest, RetryableError, type TokenUsage } from '@gambit/shared';
import { mapHttpFailure, ProviderStreamAbortedError } from './errors.js';
import { countInputTokens, countTokens } from './tokens.js';

/**
 * The error for an aborted hosted stream: input tokens as reported before the abort when the
 * provider sent them (Anthropic's message_start), else counted from the prompt; output tokens
 * counted from the text streamed so far. Always `usageEstimated: true`.
 */
export function abortedHostedStream(
  req: LlmRequest,
  partialText: string,
  reported?: Partial<Pick<TokenUsage, 'inputTokens' | 'cachedInputTokens' | 'cacheWriteTokens'>>,
): ProviderStreamAbortedError {
  const usage: TokenUsage = {
    inputTokens: reported?.inputTokens ?? countInputTokens(req),
    cachedInputTokens: reported?.cachedInputTokens ?? 0,
    ...(reported?.cacheWriteTokens !== undefined ? { cacheWriteTokens: reported.cacheWriteTokens } : {}),
    outputTokens: countTokens(partialText),
  };
  return new ProviderStreamAbortedError(partialText, usage, true);
}

/** The error classes of a Stainless-generated SDK (openai, @anthropic-ai/sdk). */
export interface SdkErrorClasses {
  // biome-ignore lint/suspicious/noExplicitAny: SDK error constructors have differing signatures
  readonly APIError: abstract new (...args: any[]) => { status: number | undefined; headers: Headers | undefined };
  // biome-ignore lint/suspicious/noExplicitAny: as above
  readonly APIConnectionTimeoutError: abstract new (...args: any[]) => Error;
}

/** Maps anything an SDK call or stream threw to a typed GambitError (see errors.ts table). */
export function mapSdkError(provider: string, err: unknown, sdk: SdkErrorClasses, errorType?: string): GambitError {
  if (isGambitError(err)) return err;
  if (err instanceof sdk.APIConnectionTimeoutError) return mapHttpFailure({ provider, status: undefined, timeout: true, cause: err });
  if (err instanceof sdk.APIError) {
    return mapHttpFailure({ provider, status: err.status, headers: err.headers, ...(errorType ? { errorType } : {}), cause: err });
  }
  // Not an SDK error (e.g. a malformed stream chunk): transient from our side of the wire.
  return new RetryableError('PROVIDER_UNAVAILABLE', `${provider}: unexpected stream failure`, { cause: err });
}
