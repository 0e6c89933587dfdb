/**
 * Anthropic Messages streaming wire format: named SSE events message_start, content_block_start,
 * ping, content_block_delta (text_delta), content_block_stop, message_delta (stop_reason and
 * cumulative usage), message_stop; and `event: error` for a failure inside an open stream.
 */

export interface AnthropicStreamScript {
  readonly model?: string;
  readonly deltas: readonly string[];
  readonly stopReason?: 'end_turn' | 'max_tokens' | 'stop_sequence';
  readonly usage: {
    readonly inputTokens: number;
    readonly outputTokens: number;
    readonly cacheReadInputTokens?: number;
    readonly cacheCreationInputTokens?: number;
  };
  /** Replace the end of the stream with an error event of this type (e.g. overloaded_error). */
  readonly errorAfterDeltas?: string;
}

const ev = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

export function anthropicFrames(s: AnthropicStreamScript): string[] {
  const u = s.usage;
  const frames = [
    ev('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_test',
        type: 'message',
        role: 'assistant',
        content: [],
        model: s.model ?? 'claude-test',
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: u.inputTokens,
          output_tokens: 1,
          cache_read_input_tokens: u.cacheReadInputTokens ?? 0,
          cache_creation_input_tokens: u.cacheCreationInputTokens ?? 0,
        },
      },
    }),
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', { type: 'ping' }),
  ];
  for (const d of s.deltas) {
    frames.push(ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: d } }));
  }
  if (s.errorAfterDeltas) {
    frames.push(ev('error', { type: 'error', error: { type: s.errorAfterDeltas, message: 'injected' } }));
    return frames;
  }
  frames.push(ev('content_block_stop', { type: 'content_block_stop', index: 0 }));
  frames.push(
    ev('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: s.stopReason ?? 'end_turn', stop_sequence: null },
      usage: { output_tokens: u.outputTokens },
    }),
  );
  frames.push(ev('message_stop', { type: 'message_stop' }));
  return frames;
}

/** Anthropic's JSON error body. */
export function anthropicErrorBody(type: string, message: string): unknown {
  return { type: 'error', error: { type, message } };
}
