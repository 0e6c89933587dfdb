/**
 * Issue 10 item 8, no silent fake provider, with the real worker process: a node naming `openai`
 * or `anthropic` on a worker with no key and no opt-in fails (non-retryable, nothing billed) with
 * an error naming the provider and the variable to set; with the operator's opt-in
 * (GAMBIT_SIMULATED_FALLBACK=1) it runs on the simulated provider, the worker says so at start,
 * and its span and metrics name provider `simulated` (`gambit.simulates` = the name asked for),
 * never the real provider's name. On the old code the first worker ran both nodes simulated
 * (status `succeeded`) and labelled them `openai`/`anthropic`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpJob } from '@gambit/shared';
import { flattenOtlp } from '@gambit/replay';
import { afterAll, describe, expect, it } from 'vitest';
import { opsPort, scrape, until } from '../operate/helpers.js';
import { llmJob, readRecord, startWorker, submit, useWorkerFixture, waitFor } from '../worker/helpers.js';

/** No provider key reaches the worker from the test's own environment (an empty value is unset). */
const NO_KEYS = { OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', GAMBIT_LOCAL_MODEL_PATH: '', GAMBIT_OPENAI_COMPATIBLE: '', GAMBIT_SIMULATED_FALLBACK: '' };

function hostedJob(tenant: string, runId: string, provider: 'openai' | 'anthropic', model: string): OpJob {
  const j = llmJob({ tenant, runId, nodeId: 'answer', attemptId: 'answer.a0', output: 'simulated answer' });
  return { ...j, op: { ...(j.op as Extract<OpJob['op'], { kind: 'llm' }>), provider, model } };
}

const dir = mkdtempSync(join(tmpdir(), 'gambit-fake-provider-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('issue 10 item 8: no silent fake provider (real worker process)', () => {
  const fx = useWorkerFixture('fakeprov');

  it('without a key and without the opt-in, an openai or anthropic node fails naming the provider and the variable', async () => {
    const w = await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env: { ...NO_KEYS } });
    fx.procs.push(w);
    expect(w.lines.some((l) => l.includes('GAMBIT_SIMULATED_FALLBACK is on'))).toBe(false);
    const cases = [
      { runId: 'r-openai', provider: 'openai', model: 'gpt-4o-mini', envVar: 'OPENAI_API_KEY' },
      { runId: 'r-anthropic', provider: 'anthropic', model: 'claude-haiku-4-5', envVar: 'ANTHROPIC_API_KEY' },
    ] as const;
    for (const c of cases) await submit(fx.redis, fx.ks, fx.queues, hostedJob('t1', c.runId, c.provider, c.model));
    for (const c of cases) {
      const rec = await waitFor(() => readRecord(fx.redis, fx.ks, 't1', c.runId, 'answer.a0'), (r) => r.status === 'failed' || r.status === 'succeeded', 30_000, `${c.provider} attempt ends`);
      expect(rec.status).toBe('failed');
      expect(rec.error).toContain('PROVIDER_NOT_CONFIGURED');
      expect(rec.error).toContain(`provider "${c.provider}" is not configured`);
      expect(rec.error).toContain(c.envVar);
      expect(rec.error).toContain('GAMBIT_SIMULATED_FALLBACK=1');
      expect(rec.output).toBeUndefined();
      expect(rec.costNanoUsd).toBe(0);
      // Non-retryable: one try, not BullMQ's three.
      expect(rec.tries).toBe(1);
    }
  }, 90_000);

  it('with GAMBIT_SIMULATED_FALLBACK=1 the node runs simulated, and the span and metrics say `simulated`, never `openai`', async () => {
    const traces = join(dir, 'worker.jsonl');
    const w = await startWorker({
      redisUrl: fx.redisUrl,
      prefix: fx.prefix,
      env: { ...NO_KEYS, GAMBIT_SIMULATED_FALLBACK: '1', GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: traces, OPS_PORT: '0' },
    });
    fx.procs.push(w);
    const port = await opsPort(w);
    const announced = w.lines.find((l) => l.includes('GAMBIT_SIMULATED_FALLBACK is on'));
    expect(announced, 'the worker announces the fallback at start').toBeDefined();
    expect(announced).toContain('openai, anthropic, local');
    await submit(fx.redis, fx.ks, fx.queues, hostedJob('t2', 'r-fallback', 'openai', 'gpt-4o-mini'));
    const rec = await waitFor(() => readRecord(fx.redis, fx.ks, 't2', 'r-fallback', 'answer.a0'), (r) => r.status === 'failed' || r.status === 'succeeded', 30_000, 'fallback attempt ends');
    expect(rec.status).toBe('succeeded');
    expect(rec.output).toBe('simulated answer');
    // Priced at the named model's rates (what the work would cost), billed once.
    expect(rec.costNanoUsd).toBeGreaterThan(0);

    const spans = await until(
      'the worker span of the fallback call',
      async () => {
        let docs: unknown[] = [];
        try {
          docs = readFileSync(traces, 'utf8')
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l) => JSON.parse(l) as unknown);
        } catch {
          docs = [];
        }
        const found = flattenOtlp(docs).filter((s) => s.attributes['gambit.run.id'] === 'r-fallback');
        return found.length > 0 ? found : undefined;
      },
      30_000,
    );
    const chat = spans.find((s) => s.name === 'chat gpt-4o-mini');
    expect(chat, JSON.stringify(spans.map((s) => s.name))).toBeDefined();
    expect(chat?.attributes['gen_ai.provider.name']).toBe('simulated');
    expect(chat?.attributes['gambit.simulates']).toBe('openai');
    expect(spans.filter((s) => s.attributes['gen_ai.provider.name'] === 'openai')).toEqual([]);

    const metrics = await scrape(port);
    const providerLabels = [...metrics.matchAll(/gen_ai_provider_name="([^"]*)"/g)].map((m) => m[1]);
    expect(providerLabels.length).toBeGreaterThan(0);
    expect(new Set(providerLabels)).toEqual(new Set(['simulated']));
  }, 90_000);
});
