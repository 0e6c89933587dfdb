/**
 * M10 contended capacity: speculation uses spare slots only. With no speculative worker slot, a
 * speculation whose guess turns out right but never started is dropped when its upstream ends
 * and the node runs for real at once, so the run takes no longer than without speculation.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { routerChain } from './workflows.js';

describe('no speculative capacity (single redis)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-busy', schedulers: 1, workers: 1, workerEnv: { WORKER_SPEC_CONCURRENCY: '0' } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('a right guess that never got a slot is dropped when the upstream ends; the node runs for real at once', async () => {
    const url = stack.urls[0] as string;
    const tenant = await eagerTenant(url, 'busy');
    const wf = routerChain('busywf', 'billing', 'billing', { routerTtftMs: 400, downTtftMs: 400 });
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: 'b' } });
    const v = await waitForRun(url, tenant, r.body.runId as string);
    expect(v.status).toBe('succeeded');
    expect(v.nodes.answer.source).toBe('authoritative');
    const attempts = v.nodes.answer.attempts as RunView[];
    const spec = attempts.find((a) => a.kind === 'speculative');
    const auth = attempts.find((a) => a.kind === 'authoritative');
    const route = (v.nodes.route.attempts as RunView[])[0];
    expect(spec).toMatchObject({ status: 'cancelled', costNanoUsd: 0 });
    expect(spec.startedAtMs).toBeUndefined();
    // Launched right after the router, not after the (never started) speculation.
    expect(auth.createdAtMs - route.finishedAtMs).toBeLessThan(2000);
    expect(auth.createdAtMs).toBeGreaterThanOrEqual(route.finishedAtMs);
    const scored = await waitForView(url, tenant, v.runId, (x) => x.outcomes.length > 0);
    expect(scored.outcomes.map((o: RunView) => [o.kind, o.wasteUsd, o.secondsSaved])).toEqual([['hit', 0, 0]]);
  });
});
