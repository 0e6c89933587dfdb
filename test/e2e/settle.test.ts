/**
 * Issue 11 D1: every ended run settles every attempt it ever started. A worker process SIGKILLed
 * while it runs a speculative attempt that is then fenced (a miss) never bills it, so the attempt
 * had no `finishedAtMs` for ever: its miss was never scored and the tenant's reservation leaked.
 * Now the run's ended pass takes the attempt for lost after RECOVERY_STALE_MS: it is finished, its
 * miss outcome is recorded and the tenant's reservations return to exactly 0.
 *
 * Two workers: one runs only authoritative jobs, the other speculative ones (and one authoritative
 * slot, the least a worker has: if it holds the route's job when it dies, that job is retried by
 * the other worker, as in crash.test.ts).
 */
import { controlKeys, tenantKeys } from '@gambit/shared/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { routerChain } from './workflows.js';

describe('ended runs settle every attempt (issue 11 D1)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-settle', schedulers: 1, workers: 0 });
    await stack.startWorker('worker-ops', { WORKER_SPEC_CONCURRENCY: '0' });
    await stack.startWorker('worker-spec', { WORKER_CONCURRENCY: '1', WORKER_SPEC_CONCURRENCY: '4' });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('a speculative attempt whose worker was killed, then fenced as a miss, is settled: outcome recorded, reservations back to 0', async () => {
    const url = stack.urls[0] as string;
    const tenant = await eagerTenant(url, 'settle', { budgetUsd: 1 });
    // The guess is wrong (route says technical, the guess billing); the speculative answer is slow.
    const wf = routerChain('settlewf', 'technical', 'billing', { routerTtftMs: 1500, downTtftMs: 20_000 });
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: 'd1' } });
    expect(r.status).toBe(201);
    const runId = r.body.runId as string;
    const running = await waitForView(url, tenant, runId, (v) => v.nodes.answer.attempts.some((a: RunView) => a.kind === 'speculative' && a.status === 'running'), 20_000);
    expect(running.nodes.route.state).toBe('running');
    // The worker running the speculative attempt dies; the route then finishes: a miss.
    const specWorker = stack.workers[1];
    await specWorker?.kill();
    const v = await waitForRun(url, tenant, runId, 60_000);
    expect(v.status).toBe('succeeded');
    expect(v.nodes.answer.output).toBe('answer for technical');
    // Settled: the fenced attempt ends, its miss is scored, the reservation is released.
    const settled = await waitForView(
      url,
      tenant,
      runId,
      (x) => x.nodes.answer.attempts.every((a: RunView) => a.finishedAtMs !== undefined) && x.outcomes.some((o: RunView) => o.kind === 'miss'),
      20_000,
    );
    const spec = settled.nodes.answer.attempts.find((a: RunView) => a.kind === 'speculative');
    expect(spec.status).toBe('cancelled');
    expect(spec.finishedAtMs).toBeGreaterThanOrEqual(v.finishedAtMs ?? 0);
    const miss = settled.outcomes.find((o: RunView) => o.kind === 'miss');
    expect(miss.wasteUsd).toBe(0);
    const cfg = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/config`);
    expect(cfg.body.budget.reservedNanoUsd).toBe(0);
    const budget = await stack.redis.hgetall(tenantKeys({ prefix: stack.prefix }, tenant).budget);
    expect(Object.keys(budget).filter((k) => k.startsWith('open:'))).toEqual([]);
    // The run left the active index once nothing was left to settle.
    const active = await stack.redis.zscore(controlKeys({ prefix: stack.prefix }).active, `${tenant}:${runId}`);
    expect(active).toBeNull();
  });
});
