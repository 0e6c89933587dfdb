/**
 * Local GGUF provider (node-llama-cpp) on a tiny random-weight llama model that the test writes
 * itself (@gambit/testkit gguf.ts): real tokens streamed, usage from the model's token meter,
 * abort mid-stream with partial text and usage (M8), a broken model path, the registry entry.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NonRetryableProviderError, type LlmRequest, StreamAbortedError } from '@gambit/shared';
import { writeTinyLlamaGguf } from '@gambit/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProviderRegistry, LocalGgufProvider, ProviderStreamAbortedError } from '../../services/worker/src/providers/index.js';
import { collect } from '../../services/worker/src/providers/testing.js';

let dir: string;
let modelPath: string;
let provider: LocalGgufProvider;
const req: LlmRequest = { provider: 'local', model: 'tiny', system: 'Be brief.', prompt: 'Route this ticket to the right team', maxTokens: 24 };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gambit-gguf-'));
  modelPath = join(dir, 'tiny.gguf');
  const info = await writeTinyLlamaGguf(modelPath, { seed: 7 });
  expect(info.bytes).toBeLessThan(1_000_000);
  provider = new LocalGgufProvider({ modelPath, gpu: false, concurrency: 1 });
});

afterAll(async () => {
  await provider?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('LocalGgufProvider', () => {
  it('streams real tokens from the model and reports metered usage', async () => {
    expect(provider.threads).toBe(availableParallelism());
    const r = await collect(provider, req);
    expect(r.error).toBeUndefined();
    expect(r.deltas.length).toBeGreaterThan(3);
    expect(r.done!.text).toBe(r.deltas.join(''));
    expect(r.done!.text.trim().length).toBeGreaterThan(0);
    // Greedy decoding of this model never picks end-of-sequence, so it runs to maxTokens.
    expect(r.done!.finishReason).toBe('length');
    expect(r.done!.usage.outputTokens).toBe(24);
    // chat template + system + prompt, in the model's own tokens
    expect(r.done!.usage.inputTokens).toBeGreaterThan(8);
    expect(r.done!.usage.cachedInputTokens).toBe(0);
    expect(r.done!.usageEstimated).toBe(false);
  });

  it('greedy decoding is deterministic across requests (the sequence is reset between them)', async () => {
    const a = await collect(provider, req);
    const b = await collect(provider, req);
    expect(b.done!.text).toBe(a.done!.text);
    expect(b.done!.usage).toEqual(a.done!.usage);
  });

  it('abort mid-stream stops generation and throws StreamAbortedError with the partial text and usage so far', async () => {
    const ac = new AbortController();
    const long = { ...req, maxTokens: 300 };
    const r = await collect(provider, long, ac.signal, (n) => {
      if (n === 3) ac.abort();
    });
    expect(r.done).toBeUndefined();
    expect(r.error).toBeInstanceOf(StreamAbortedError);
    const err = r.error as ProviderStreamAbortedError;
    expect(err).toBeInstanceOf(ProviderStreamAbortedError);
    expect(err.partialText).toBe(r.deltas.join(''));
    expect(r.deltas).toHaveLength(3);
    expect(err.usage.outputTokens).toBeGreaterThanOrEqual(3);
    expect(err.usage.outputTokens).toBeLessThan(300);
    expect(err.usage.inputTokens).toBeGreaterThan(8);
    // The sequence is free again: the next request runs normally.
    const next = await collect(provider, req);
    expect(next.done!.usage.outputTokens).toBe(24);
  });

  it('queues requests beyond its concurrency; a queued request aborted while waiting leaves the queue', async () => {
    const ac = new AbortController();
    const first = collect(provider, req);
    const second = collect(provider, req);
    const third = collect(provider, req, ac.signal);
    ac.abort();
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(a.done!.text).toBe(b.done!.text);
    expect(c.error).toBeInstanceOf(ProviderStreamAbortedError);
    expect((c.error as ProviderStreamAbortedError).usage.outputTokens).toBe(0);
  });

  it('a file that is not a GGUF model fails with NonRetryableProviderError PROVIDER_BAD_REQUEST', async () => {
    const bad = join(dir, 'bad.gguf');
    await writeFile(bad, 'not a model');
    const p = new LocalGgufProvider({ modelPath: bad, gpu: false });
    const r = await collect(p, req);
    expect(r.error).toBeInstanceOf(NonRetryableProviderError);
    expect((r.error as NonRetryableProviderError).code).toBe('PROVIDER_BAD_REQUEST');
    await p.close();
  });

  it('the registry serves `local` from the configured model path and closes it', async () => {
    const reg = createProviderRegistry({ local: { modelPath, gpu: false } });
    const resolved = reg.resolve('local');
    expect(resolved.simulated).toBe(false);
    expect(resolved.provider).toBeInstanceOf(LocalGgufProvider);
    const r = await collect(resolved.provider, { ...req, maxTokens: 5 });
    expect(r.done!.usage.outputTokens).toBe(5);
    await reg.close();
    await reg.close();
  });
});
