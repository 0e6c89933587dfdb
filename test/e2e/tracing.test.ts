/**
 * One trace per run across processes: the scheduler's run, decision and launch spans and the
 * worker's attempt spans share the run's trace id, the worker's spans are children of the
 * scheduler's (W3C context in the job payload), and decision spans carry the dollars.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun } from './harness.js';
import { routerChain } from './workflows.js';

interface SpanLine {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
  attributes: Record<string, unknown>;
}

const dir = mkdtempSync(join(tmpdir(), 'gambit-traces-'));
const schedulerFile = join(dir, 'scheduler.jsonl');
const workerFile = join(dir, 'worker.jsonl');
const read = (f: string): SpanLine[] =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as SpanLine);

describe('traces across scheduler and worker (single redis)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      { kind: 'single', url: inject('redisUrl') },
      {
        label: 'e2e-trace',
        schedulers: 1,
        workers: 1,
        schedulerEnv: { GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: schedulerFile },
        workerEnv: { GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: workerFile },
      },
    );
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('joins every span of a run into one trace, worker spans under scheduler spans', async () => {
    const url = stack.urls[0] as string;
    const tenant = await eagerTenant(url, 'trace');
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('tracewf', 'billing', 'billing', { routerTtftMs: 300, downTtftMs: 300 }), inputs: { q: 't' } });
    const v: RunView = await waitForRun(url, tenant, r.body.runId as string);
    expect(v.status).toBe('succeeded');
    // The worker writes its span when the attempt ends; give the file a moment.
    await new Promise((res) => setTimeout(res, 300));
    const mine = (s: SpanLine) => s.attributes['gambit.run.id'] === v.runId;
    const sched = read(schedulerFile).filter(mine);
    const work = read(workerFile).filter(mine);
    const traceIds = new Set([...sched, ...work].map((s) => s.traceId));
    expect(traceIds.size).toBe(1);
    expect(sched.map((s) => s.name)).toEqual(expect.arrayContaining(['gambit.run', 'gambit.decision', 'gambit.node']));
    const decision = sched.find((s) => s.name === 'gambit.decision' && s.attributes['gambit.decision.action'] === 'SPECULATE');
    expect(decision?.attributes['gambit.decision.c_spec_usd']).toBeGreaterThan(0);
    const kinds = work.map((s) => s.attributes['gambit.attempt.kind']).sort();
    expect(kinds).toEqual(['authoritative', 'speculative']);
    const schedIds = new Set(sched.map((s) => s.spanId));
    for (const w of work) expect(schedIds.has(w.parentSpanId ?? '')).toBe(true);
    const specSpan = work.find((s) => s.attributes['gambit.attempt.kind'] === 'speculative');
    expect(specSpan?.parentSpanId).toBe(decision?.spanId);
    // Every LLM call span carries the GenAI attributes and its dollars (issue 4 item 3).
    for (const w of work) {
      expect(w.name).toBe('gen_ai.chat');
      expect(w.attributes['gen_ai.provider.name']).toBe('simulated');
      expect(typeof w.attributes['gen_ai.request.model']).toBe('string');
      expect(w.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(w.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(w.attributes['gen_ai.usage.cache_read.input_tokens']).toBe(0);
      expect(w.attributes['gambit.cost_usd']).toBeGreaterThan(0);
    }
    for (const key of ['p', 'ev_usd', 'threshold_usd', 'alpha', 'lambda_usd_per_s']) expect(typeof decision?.attributes[`gambit.decision.${key}`], key).toBe('number');
  });
});
