/**
 * Anthropic adapter against a local server speaking the real Messages SSE wire format: usage
 * with cache reads and writes, abort mid-stream with fractional usage (M8), error mapping
 * (HTTP statuses and error events inside an open stream).
 */
import { type LlmRequest, RetryableError, RetryAfterError } from '@gambit/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { AnthropicProvider, createProviderRegistry, ProviderStreamAbortedError } from '../../services/worker/src/providers/index.js';
import { collect } from '../../services/worker/src/providers/testing.js';
import { countInputTokens, countTokens } from '../../services/worker/src/providers/tokens.js';
import { ERROR_CASES } from './error-cases.js';
import { startWireServer, type WireServer } from './wire/http-server.js';
import { anthropicErrorBody, anthropicFrames } from './wire/anthropic-frames.js';

const req: LlmRequest = { provider: 'anthropic', model: 'claude-test', system: 'Be brief.', prompt: 'Is this invoice valid?', maxTokens: 64 };
const deltas = ['Yes', ',', ' the', ' invoice', ' is', ' valid', '.'];
const usage = { inputTokens: 21, outputTokens: 8, cacheReadInputTokens: 1500, cacheCreationInputTokens: 300 };

let server: WireServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function provider(url: string, extra: { timeoutMs?: number } = {}) {
  return new AnthropicProvider({ apiKey: 'sk-ant-test', baseUrl: url, ...extra });
}

describe('Anthropic adapter', () => {
  it('streams text deltas and reports usage with cache reads and cache writes', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 5, frames: anthropicFrames({ deltas, usage }) }));
    const r = await collect(provider(server.url), req);
    expect(r.error).toBeUndefined();
    expect(r.deltas).toEqual(deltas);
    expect(r.done).toEqual({
      type: 'done',
      text: deltas.join(''),
      usage: { inputTokens: 21, cachedInputTokens: 1500, cacheWriteTokens: 300, outputTokens: 8 },
      usageEstimated: false,
      finishReason: 'stop',
    });
    const sent = server.requests[0]!;
    expect(sent.path).toBe('/v1/messages');
    // SDK 1.x sends the key as a bearer token; older ones used x-api-key.
    expect([sent.headers['x-api-key'], sent.headers.authorization]).toContainEqual(expect.stringContaining('sk-ant-test'));
    expect(sent.body).toMatchObject({
      model: 'claude-test',
      max_tokens: 64,
      system: 'Be brief.',
      stream: true,
      messages: [{ role: 'user', content: req.prompt }],
    });
  });

  it('maps stop_reason max_tokens to finishReason length', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 1, frames: anthropicFrames({ deltas, usage, stopReason: 'max_tokens' }) }));
    const r = await collect(provider(server.url), req);
    expect(r.done!.finishReason).toBe('length');
  });

  it('abort mid-stream closes the connection; partial text, reported input and counted output (estimated)', async () => {
    const many = Array.from({ length: 40 }, (_, i) => ` step${i}`);
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 25, frames: anthropicFrames({ deltas: many, usage }) }));
    const ac = new AbortController();
    const r = await collect(provider(server.url), req, ac.signal, (n) => {
      if (n === 4) ac.abort();
    });
    const seen = await server.clientAborted();
    expect(seen.framesWritten).toBeLessThan(many.length);
    expect(r.done).toBeUndefined();
    expect(r.error).toBeInstanceOf(ProviderStreamAbortedError);
    const err = r.error as ProviderStreamAbortedError;
    expect(err.partialText).toBe(many.slice(0, 4).join(''));
    expect(err.usageEstimated).toBe(true);
    // message_start arrived before the abort: its input figures are the provider's own.
    expect(err.usage).toEqual({ inputTokens: 21, cachedInputTokens: 1500, cacheWriteTokens: 300, outputTokens: countTokens(err.partialText) });
    expect(err.usage.outputTokens).toBeLessThan(countTokens(many.join('')));
  });

  it('abort before any event counts input from the prompt', async () => {
    server = await startWireServer(() => ({ kind: 'hang' }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await collect(provider(server.url), req, ac.signal);
    const err = r.error as ProviderStreamAbortedError;
    expect(err).toBeInstanceOf(ProviderStreamAbortedError);
    expect(err.usage).toEqual({ inputTokens: countInputTokens(req), cachedInputTokens: 0, outputTokens: 0 });
  });

  for (const c of ERROR_CASES) {
    it(`maps HTTP ${c.status}${c.headers ? ` ${JSON.stringify(c.headers)}` : ''} to ${c.expectClass.name} ${c.expectCode}, one request (no SDK retry)`, async () => {
      server = await startWireServer(() => ({ kind: 'error', status: c.status, body: anthropicErrorBody(c.errorType, 'boom'), ...(c.headers ? { headers: c.headers } : {}) }));
      const r = await collect(provider(server.url), req);
      expect(r.error).toBeInstanceOf(c.expectClass);
      expect((r.error as { code: string }).code).toBe(c.expectCode);
      if (c.expectRetryAfterMs !== undefined) expect((r.error as { retryAfterMs: number }).retryAfterMs).toBe(c.expectRetryAfterMs);
      expect(server.requests).toHaveLength(1);
    });
  }

  it('maps an overloaded_error event inside an open stream to RetryAfterError PROVIDER_OVERLOADED', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 1, frames: anthropicFrames({ deltas: ['Par', 'tial'], usage, errorAfterDeltas: 'overloaded_error' }) }));
    const r = await collect(provider(server.url), req);
    expect(r.deltas).toEqual(['Par', 'tial']);
    expect(r.error).toBeInstanceOf(RetryAfterError);
    expect((r.error as RetryAfterError).code).toBe('PROVIDER_OVERLOADED');
  });

  it('maps an api_error event inside an open stream to RetryableError PROVIDER_UNAVAILABLE', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 1, frames: anthropicFrames({ deltas: ['x'], usage, errorAfterDeltas: 'api_error' }) }));
    const r = await collect(provider(server.url), req);
    expect(r.error).toBeInstanceOf(RetryableError);
    expect((r.error as RetryableError).code).toBe('PROVIDER_UNAVAILABLE');
  });

  it('maps a timeout to RetryableError PROVIDER_TIMEOUT', async () => {
    server = await startWireServer(() => ({ kind: 'hang' }));
    const r = await collect(provider(server.url, { timeoutMs: 150 }), req);
    expect(r.error).toBeInstanceOf(RetryableError);
    expect((r.error as RetryableError).code).toBe('PROVIDER_TIMEOUT');
  });

  it('the registry serves anthropic only when a key is configured', async () => {
    server = await startWireServer(() => ({ kind: 'sse', delayMs: 1, frames: anthropicFrames({ deltas, usage }) }));
    const reg = createProviderRegistry({ anthropic: { apiKey: 'k', baseUrl: server.url } });
    const resolved = reg.resolve('anthropic');
    expect(resolved.simulated).toBe(false);
    expect(resolved.provider).toBeInstanceOf(AnthropicProvider);
    expect((await collect(resolved.provider, req)).done!.text).toBe(deltas.join(''));
    await reg.close();
    const bare = createProviderRegistry({});
    expect(() => bare.resolve('anthropic')).toThrow(/provider "anthropic" is not configured on this worker: set ANTHROPIC_API_KEY/);
    await bare.close();
    const optedIn = createProviderRegistry({ simulatedFallback: true });
    expect(optedIn.resolve('anthropic').simulated).toBe(true);
    await optedIn.close();
  });
});
