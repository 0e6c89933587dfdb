/**
 * The provider interface every LLM adapter implements (simulated, OpenAI-compatible, Anthropic,
 * local GGUF). Streaming first: `stream` yields text deltas and ends with the usage; on abort
 * it throws AbortedError carrying the partial text, so the caller can bill fractional waste (M8).
 */
import type { TokenUsage } from '../core/types.js';

export interface LlmRequest {
  readonly provider: string;
  readonly model: string;
  readonly system?: string;
  readonly prompt: string;
  readonly maxTokens: number;
  /** Seed for deterministic providers (the simulated one); real providers may ignore it. */
  readonly seed?: string;
  /** Simulated-provider hints from the workflow (scripted outputs, outcome distributions). */
  readonly simulate?: {
    readonly output?: string;
    readonly outcomes?: ReadonlyArray<{ readonly value: string; readonly weight: number }>;
    readonly ttftMs?: number;
    readonly tokensPerSec?: number;
  };
}

export type LlmStreamEvent =
  | { readonly type: 'delta'; readonly text: string }
  | {
      readonly type: 'done';
      readonly text: string;
      readonly usage: TokenUsage;
      /** True when the provider did not report usage and tokens were counted locally. */
      readonly usageEstimated: boolean;
      readonly finishReason: 'stop' | 'length' | 'other';
    };

export interface LlmProvider {
  /** Provider name as used in workflow nodes (`simulated`, `openai`, `anthropic`, `local`, ...). */
  readonly name: string;
  /**
   * Streams one completion. Yields `delta` events, then exactly one `done`. When `signal` aborts,
   * the request is closed and the iterator throws an AbortedError whose `partialText` holds what
   * was streamed so far.
   */
  stream(req: LlmRequest, signal: AbortSignal): AsyncIterable<LlmStreamEvent>;
  close?(): Promise<void>;
}
