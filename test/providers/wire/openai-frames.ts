/** OpenAI chat-completions streaming wire format: `data: {chunk}` frames, a usage chunk, `data: [DONE]`. */

export interface OpenAiStreamScript {
  readonly model?: string;
  readonly deltas: readonly string[];
  readonly finishReason?: 'stop' | 'length';
  /** Omit to simulate a server that ignores stream_options.include_usage. */
  readonly usage?: { readonly promptTokens: number; readonly completionTokens: number; readonly cachedTokens?: number };
}

export function openAiFrames(s: OpenAiStreamScript): string[] {
  const model = s.model ?? 'gpt-test';
  const base = { id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model };
  const frame = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
  const frames = [frame({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })];
  for (const d of s.deltas) {
    frames.push(frame({ ...base, choices: [{ index: 0, delta: { content: d }, finish_reason: null }] }));
  }
  frames.push(frame({ ...base, choices: [{ index: 0, delta: {}, finish_reason: s.finishReason ?? 'stop' }] }));
  if (s.usage) {
    const u = s.usage;
    frames.push(
      frame({
        ...base,
        choices: [],
        usage: {
          prompt_tokens: u.promptTokens,
          completion_tokens: u.completionTokens,
          total_tokens: u.promptTokens + u.completionTokens,
          prompt_tokens_details: { cached_tokens: u.cachedTokens ?? 0 },
        },
      }),
    );
  }
  frames.push('data: [DONE]\n\n');
  return frames;
}

/** OpenAI's JSON error body. */
export function openAiErrorBody(type: string, message: string): unknown {
  return { error: { message, type, param: null, code: null } };
}
