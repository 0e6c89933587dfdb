/**
 * Crashes lose no run. A worker process SIGKILLed while it runs an authoritative job: BullMQ sees
 * the job stalled, another worker retries it under the same attempt (a new try), and the run
 * completes with one authoritative attempt for the node. A scheduler process SIGKILLed while its
 * runs are in flight: the other scheduler advances them (advance events, the recovery sweep).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { llm } from './workflows.js';

describe('process crashes (single redis)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-kill', schedulers: 2, workers: 1 });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('SIGKILL of the worker running a job loses no run: the job is retried and the run completes', async () => {
    const url = stack.urls[1] as string;
    const tenant = await eagerTenant(url, 'kill');
    const wf = {
      name: 'killwf',
      nodes: [
        llm('slow', 'Think about {{inputs.q}}', { output: 'thought', ttftMs: 2500 }, { expectedOutputTokens: 2, maxTokens: 8 }),
        llm('after', 'Use {{nodes.slow.output}}', { output: 'final', ttftMs: 50 }, { expectedOutputTokens: 2, maxTokens: 8 }),
      ],
      edges: [{ from: 'slow', to: 'after', type: 'passthrough', speculate: false }],
    };
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: 'k' } });
    expect(r.status).toBe(201);
    const runId = r.body.runId as string;
    await waitForView(url, tenant, runId, (v) => v.nodes.slow.attempts[0]?.status === 'running');
    await stack.workers[0]?.kill();
    await stack.startWorker('worker-replacement');
    const v = await waitForRun(url, tenant, runId, 60_000);
    expect(v.status).toBe('succeeded');
    expect(v.nodes.after.output).toBe('final');
    const slow = v.nodes.slow.attempts as RunView[];
    expect(slow).toHaveLength(1);
    expect(slow[0].kind).toBe('authoritative');
    expect(slow[0].tries).toBeGreaterThanOrEqual(2);
    expect(v.nodes.after.attempts).toHaveLength(1);
  });

  it('SIGKILL of a scheduler loses no run: the other scheduler finishes them, each node executed once', async () => {
    const victim = stack.urls[0] as string;
    const survivor = stack.urls[1] as string;
    const tenant = await eagerTenant(survivor, 'schedkill');
    const wf = {
      name: 'schedkillwf',
      nodes: [
        llm('a', 'A {{inputs.q}}', { output: 'x', ttftMs: 300 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm('b', 'B {{nodes.a.output}}', { output: 'y', ttftMs: 300 }, { expectedOutputTokens: 1, maxTokens: 4 }),
        llm('c', 'C {{nodes.b.output}}', { output: 'z', ttftMs: 300 }, { expectedOutputTokens: 1, maxTokens: 4 }),
      ],
      edges: [
        { from: 'a', to: 'b', type: 'passthrough', predictor: { kind: 'fixed', value: 'x' } },
        { from: 'b', to: 'c', type: 'passthrough', predictor: { kind: 'fixed', value: 'wrong' } },
      ],
    };
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await http(victim, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: String(i) } });
      expect(r.status).toBe(201);
      ids.push(r.body.runId as string);
    }
    await stack.schedulers[0]?.kill();
    for (const id of ids) {
      const v = await waitForRun(survivor, tenant, id, 60_000);
      expect(v.status).toBe('succeeded');
      expect(v.nodes.c.output).toBe('z');
      for (const node of ['a', 'b', 'c']) {
        const auth = (v.nodes[node].attempts as RunView[]).filter((a) => a.kind === 'authoritative');
        expect(auth.length).toBeLessThanOrEqual(1);
        if (v.nodes[node].source === 'authoritative') expect(auth).toHaveLength(1);
      }
    }
  });

  it('SIGTERM stops a scheduler cleanly (exit 0) without touching authoritative work in flight', async () => {
    const extra = await stack.startScheduler('scheduler-extra');
    const survivor = stack.urls[1] as string;
    const tenant = await eagerTenant(extra.url, 'term');
    const wf = {
      name: 'termwf',
      nodes: [llm('a', 'A {{inputs.q}}', { output: 'x', ttftMs: 1500 }, { expectedOutputTokens: 1, maxTokens: 4 })],
    };
    const r = await http(extra.url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: 't' } });
    expect(r.status).toBe(201);
    await extra.proc.stop(10_000);
    expect(await extra.proc.exited()).toBe(0);
    expect(extra.proc.lines.some((l) => l.includes('"scheduler stopped"'))).toBe(true);
    const v = await waitForRun(survivor, tenant, r.body.runId as string, 30_000);
    expect(v.status).toBe('succeeded');
    expect((v.nodes.a.attempts as RunView[]).map((a) => [a.kind, a.status])).toEqual([['authoritative', 'succeeded']]);
  });
});
