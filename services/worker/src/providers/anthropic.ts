/**
 * Anthropic adapter (Messages API, streaming). Usage from message_start and message_delta:
 * input_tokens → inputTokens (Anthropic's input_tokens already excludes cache reads and writes),
 * cache_read_input_tokens → cachedInputTokens, cache_creation_input_tokens → cacheWriteTokens,
 * output_tokens (cumulative, last message_delta) → outputTokens.
 * Abort: ProviderStreamAbortedError with the partial text; input usage as reported by
 * message_start when it arrived (else counted from the prompt), output counted from the partial
 * text, usageEstimated: true (M8). SDK retries are off (maxRetries: 0).
 */
import Anthropic from '@anthropic-ai/sdk';
import type { LlmProvider, LlmRequest, LlmStreamEvent, TokenUsage } from '@gambit/shared';
import { abortedHostedStream, mapSdkError } from './hosted.js';
import { countInputTokens, countTokens } from './tokens.js';

export interface AnthropicOptions {
  readonly name?: string;
  readonly apiKey: string;
  readonly baseUrl?: string;
  readonly timeoutMs?: number;
}

function finishReasonOf(r: string | null | undefined): 'stop' | 'length' | 'other' {
  if (r === 'end_turn' || r === 'stop_sequence') return 'stop';
  return r === 'max_tokens' ? 'length' : 'other';
}

interface UsageSoFar {
  inputTokens?: number;
  cachedInputTokens?: number;
  cacheWriteTokens?: number;
  outputTokens?: number;
}

export class AnthropicProvider implements LlmProvider {
  readonly name: string;
  private readonly client: Anthropic;

  constructor(opts: AnthropicOptions) {
    this.name = opts.name ?? 'anthropic';
    this.client = new Anthropic({
      apiKey: opts.apiKey,
      ...(opts.baseUrl ? { baseURL: opts.baseUrl } : {}),
      maxRetries: 0,
      timeout: opts.timeoutMs ?? 600_000,
    });
  }

  async *stream(req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmStreamEvent> {
    let text = '';
    const u: UsageSoFar = {};
    let stop: string | null | undefined;
    if (signal.aborted) throw abortedHostedStream(req, text);
    try {
      const stream = await this.client.messages.create(
        {
          model: req.model,
          max_tokens: req.maxTokens,
          ...(req.system ? { system: req.system } : {}),
          messages: [{ role: 'user', content: req.prompt }],
          stream: true,
        },
        { signal },
      );
      for await (const ev of stream) {
        if (ev.type === 'message_start') {
          const mu = ev.message.usage;
          u.inputTokens = mu.input_tokens;
          u.cachedInputTokens = mu.cache_read_input_tokens ?? 0;
          u.cacheWriteTokens = mu.cache_creation_input_tokens ?? 0;
          u.outputTokens = mu.output_tokens;
        } else if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') {
          text += ev.delta.text;
          yield { type: 'delta', text: ev.delta.text };
        } else if (ev.type === 'message_delta') {
          stop = ev.delta.stop_reason;
          // message_delta usage is cumulative; input fields may be null when unchanged.
          u.outputTokens = ev.usage.output_tokens;
          if (ev.usage.input_tokens != null) u.inputTokens = ev.usage.input_tokens;
          if (ev.usage.cache_read_input_tokens != null) u.cachedInputTokens = ev.usage.cache_read_input_tokens;
          if (ev.usage.cache_creation_input_tokens != null) u.cacheWriteTokens = ev.usage.cache_creation_input_tokens;
        }
        if (signal.aborted) break;
      }
    } catch (err) {
      if (signal.aborted) throw abortedHostedStream(req, text, u);
      const errorType = err instanceof Anthropic.APIError ? (err.type ?? undefined) : undefined;
      throw mapSdkError(this.name, err, Anthropic, errorType);
    }
    if (signal.aborted) throw abortedHostedStream(req, text, u);
    const estimated = u.inputTokens === undefined || u.outputTokens === undefined;
    const usage: TokenUsage = {
      inputTokens: u.inputTokens ?? countInputTokens(req),
      cachedInputTokens: u.cachedInputTokens ?? 0,
      cacheWriteTokens: u.cacheWriteTokens ?? 0,
      outputTokens: u.outputTokens ?? countTokens(text),
    };
    yield { type: 'done', text, usage, usageEstimated: estimated, finishReason: finishReasonOf(stop) };
  }

  async close(): Promise<void> {
    // The SDK holds no long-lived handles beyond the global fetch dispatcher.
  }
}
