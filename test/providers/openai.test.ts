/**
 * OpenAI-compatible adapter against a local server speaking the real SSE wire format: usage
 * with cached tokens, abort mid-stream with estimated fractional usage (M8), error mapping.
 */
import { type LlmRequest, RetryableError } from '@gambit/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { createProviderRegistry, OpenAiCompatibleProvider, ProviderStreamAbortedError } from '../../services/worker/src/providers/index.js';
import { collect } from '../../services/worker/src/providers/testing.js';
import { countInputTokens, countTokens } from '../../services/worker/src/providers/tokens.js';
import { ERROR_CASES } from './error-cases.js';
import { startWireServer, type WireServer } from './wire/http-server.js';
import { openAiErrorBody, openAiFrames } from './wire/openai-frames.js';

const req: LlmRequest = { provider: 'vllm', model: 'qwen-test', system: 'Be brief.', prompt: 'Route this ticket: refund please', maxTokens: 50 };
const deltas = ['Route', 'd to', ' billing', ' because', ' refund', ' request', '.'];

let server: WireServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function provider(url: string, extra: { timeoutMs?: number } = {}) {
  return new OpenAiCompatibleProvider({ name: 'vllm', baseUrl: `${url}/v1`, apiKey: 'sk-test', ...extra });
}

describe('OpenAI-compatible adapter', () => {
  it('streams deltas and reports the usage chunk, cached tokens split out', async () => {
    server = await startWireServer(() => ({
      kind: 'sse',
      delayMs: 5,
      frames: openAiFrames({ deltas, usage: { promptTokens: 40, completionTokens: 9, cachedTokens: 32 } }),
    }));
    const r = await collect(provider(server.url), req);
    expect(r.error).toBeUndefined();
    expect(r.deltas).toEqual(deltas);
    expect(r.done).toEqual({
      type: 'done',
      text: deltas.join(''),
      usage: { inputTokens: 8, cachedInputTokens: 32, outputTokens: 9 },
      usageEstimated: false,
      finishReason: 'stop',
    });
    const sent = server.requests[0]!;
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers.authorization).toBe('Bearer sk-test');
    expect(sent.body).toMatchObject({
      model: 'qwen-test',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 50,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: req.prompt },
      ],
    });
  });

  it('counts usage locally (estimated) when the server sends no usage chunk; maps finish_reason length', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 1, frames: openAiFrames({ deltas, finishReason: 'length' }) }));
    const r = await collect(provider(server.url), req);
    expect(r.done!.usageEstimated).toBe(true);
    expect(r.done!.finishReason).toBe('length');
    expect(r.done!.usage).toEqual({ inputTokens: countInputTokens(req), cachedInputTokens: 0, outputTokens: countTokens(deltas.join('')) });
  });

  it('abort mid-stream closes the connection and throws StreamAbortedError with partial text and estimated usage', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ` word${i}`);
    server = await startWireServer(() => ({
      kind: 'sse',
      delayMs: 25,
      frames: openAiFrames({ deltas: many, usage: { promptTokens: 40, completionTokens: 80 } }),
    }));
    const ac = new AbortController();
    const r = await collect(provider(server.url), req, ac.signal, (n) => {
      if (n === 3) ac.abort();
    });
    const seen = await server.clientAborted();
    expect(seen.framesWritten).toBeLessThan(many.length);
    expect(r.done).toBeUndefined();
    expect(r.error).toBeInstanceOf(ProviderStreamAbortedError);
    const err = r.error as ProviderStreamAbortedError;
    expect(err.partialText).toBe(many.slice(0, 3).join(''));
    expect(err.usageEstimated).toBe(true);
    expect(err.usage).toEqual({ inputTokens: countInputTokens(req), cachedInputTokens: 0, outputTokens: countTokens(err.partialText) });
    expect(err.usage.outputTokens).toBeLessThan(countTokens(many.join('')));
  });

  it('abort before the response headers arrive also throws StreamAbortedError', async () => {
    server = await startWireServer(() => ({ kind: 'hang' }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await collect(provider(server.url), req, ac.signal);
    expect(r.error).toBeInstanceOf(ProviderStreamAbortedError);
    expect((r.error as ProviderStreamAbortedError).partialText).toBe('');
  });

  for (const c of ERROR_CASES) {
    it(`maps HTTP ${c.status}${c.headers ? ` ${JSON.stringify(c.headers)}` : ''} to ${c.expectClass.name} ${c.expectCode}, one request (no SDK retry)`, async () => {
      server = await startWireServer(() => ({ kind: 'error', status: c.status, body: openAiErrorBody(c.errorType, 'boom'), ...(c.headers ? { headers: c.headers } : {}) }));
      const r = await collect(provider(server.url), req);
      expect(r.error).toBeInstanceOf(c.expectClass);
      expect((r.error as { code: string }).code).toBe(c.expectCode);
      if (c.expectRetryAfterMs !== undefined) expect((r.error as { retryAfterMs: number }).retryAfterMs).toBe(c.expectRetryAfterMs);
      expect(server.requests).toHaveLength(1);
    });
  }

  it('maps a timeout to RetryableError PROVIDER_TIMEOUT', async () => {
    server = await startWireServer(() => ({ kind: 'hang' }));
    const r = await collect(provider(server.url, { timeoutMs: 150 }), req);
    expect(r.error).toBeInstanceOf(RetryableError);
    expect((r.error as RetryableError).code).toBe('PROVIDER_TIMEOUT');
  });

  it('maps a refused connection to RetryableError PROVIDER_UNAVAILABLE', async () => {
    const s = await startWireServer(() => ({ kind: 'hang' }));
    const url = s.url;
    await s.close();
    const r = await collect(provider(url), req);
    expect(r.error).toBeInstanceOf(RetryableError);
    expect((r.error as RetryableError).code).toBe('PROVIDER_UNAVAILABLE');
  });

  it('is reachable through the registry under its configured name', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 1, frames: openAiFrames({ deltas, usage: { promptTokens: 5, completionTokens: 7 } }) }));
    const reg = createProviderRegistry({ openaiCompatible: { vllm: { baseUrl: `${server.url}/v1` } } });
    const resolved = reg.resolve('vllm');
    expect(resolved.simulated).toBe(false);
    const r = await collect(resolved.provider, req);
    expect(r.done!.text).toBe(deltas.join(''));
    await reg.close();
  });
});
