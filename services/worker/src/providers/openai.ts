/**
 * OpenAI-compatible adapter (OpenAI, vLLM, Ollama, llama.cpp server, ...), by base URL and key.
 * Streams chat completions with `stream_options.include_usage`, so the last chunk carries the
 * usage: prompt_tokens (incl. cached) → inputTokens (uncached part) + cachedInputTokens
 * (`prompt_tokens_details.cached_tokens`); completion_tokens → outputTokens. A server that sends
 * no usage chunk gets usage counted locally (o200k_base) with usageEstimated: true.
 * Abort: the SDK ends the stream silently, so `signal.aborted` is checked and
 * ProviderStreamAbortedError thrown with the partial text and estimated usage (M8).
 * The SDK's own retries are off (maxRetries: 0): the worker's retry policy governs.
 */
import type { LlmProvider, LlmRequest, LlmStreamEvent, TokenUsage } from '@gambit/shared';
import OpenAI from 'openai';
import { abortedHostedStream, mapSdkError } from './hosted.js';
import { countInputTokens, countTokens } from './tokens.js';

export interface OpenAiCompatibleOptions {
  /** Provider name as used in workflows (`openai`, `vllm`, ...). */
  readonly name: string;
  readonly baseUrl: string;
  readonly apiKey?: string;
  readonly timeoutMs?: number;
  /**
   * Field carrying maxTokens. OpenAI's reasoning models reject `max_tokens`; many local servers
   * only know it. Default: `max_completion_tokens` for api.openai.com, `max_tokens` elsewhere.
   */
  readonly maxTokensField?: 'max_tokens' | 'max_completion_tokens';
}

function finishReasonOf(r: string | null | undefined): 'stop' | 'length' | 'other' {
  return r === 'stop' ? 'stop' : r === 'length' ? 'length' : 'other';
}

export class OpenAiCompatibleProvider implements LlmProvider {
  readonly name: string;
  private readonly client: OpenAI;
  private readonly maxTokensField: 'max_tokens' | 'max_completion_tokens';

  constructor(opts: OpenAiCompatibleOptions) {
    this.name = opts.name;
    this.client = new OpenAI({
      baseURL: opts.baseUrl,
      // Local servers accept any key; the SDK insists on one.
      apiKey: opts.apiKey ?? 'no-key',
      maxRetries: 0,
      timeout: opts.timeoutMs ?? 600_000,
    });
    this.maxTokensField =
      opts.maxTokensField ?? (new URL(opts.baseUrl).hostname === 'api.openai.com' ? 'max_completion_tokens' : 'max_tokens');
  }

  async *stream(req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmStreamEvent> {
    let text = '';
    let reported: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    if (signal.aborted) throw abortedHostedStream(req, text);
    try {
      const messages: OpenAI.ChatCompletionMessageParam[] = [];
      if (req.system) messages.push({ role: 'system', content: req.system });
      messages.push({ role: 'user', content: req.prompt });
      const stream = await this.client.chat.completions.create(
        {
          model: req.model,
          messages,
          [this.maxTokensField]: req.maxTokens,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal },
      );
      for await (const chunk of stream) {
        if (chunk.usage) reported = chunk.usage;
        const choice = chunk.choices[0];
        if (choice?.finish_reason) finish = choice.finish_reason;
        const delta = choice?.delta?.content;
        if (delta) {
          text += delta;
          yield { type: 'delta', text: delta };
        }
        if (signal.aborted) break;
      }
    } catch (err) {
      if (signal.aborted) throw abortedHostedStream(req, text);
      throw mapSdkError(this.name, err, OpenAI);
    }
    // Why: on abort the SDK's iterator returns normally instead of throwing.
    if (signal.aborted) throw abortedHostedStream(req, text);
    let usage: TokenUsage;
    if (reported) {
      const cached = reported.prompt_tokens_details?.cached_tokens ?? 0;
      usage = { inputTokens: reported.prompt_tokens - cached, cachedInputTokens: cached, outputTokens: reported.completion_tokens };
    } else {
      usage = { inputTokens: countInputTokens(req), cachedInputTokens: 0, outputTokens: countTokens(text) };
    }
    yield { type: 'done', text, usage, usageEstimated: !reported, finishReason: finishReasonOf(finish) };
  }

  async close(): Promise<void> {
    // The SDK holds no long-lived handles beyond the global fetch dispatcher.
  }
}
