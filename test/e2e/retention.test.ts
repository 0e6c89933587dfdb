/**
 * Retention: keys of an ended run (its compact record, once folded) expire RUN_RETENTION_SEC after
 * it ended, so finished runs do not accumulate in Redis; while it runs nothing expires.
 */
import { runKeys, tenantKeys } from '@gambit/shared/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type Stack, startStack, waitForRun } from './harness.js';
import { routerChain } from './workflows.js';

describe('run retention (single redis)', () => {
  let stack: Stack;
  const redis = new Redis(inject('redisUrl'));
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-retain', schedulers: 1, workers: 1, schedulerEnv: { RUN_RETENTION_SEC: '2' } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await redis.quit();
  });

  it('an ended run keeps its keys with a TTL, then they are gone and the API answers 404', async () => {
    const url = stack.urls[0] as string;
    const tenant = await eagerTenant(url, 'retain');
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('retainwf', 'billing', 'billing', { routerTtftMs: 100, downTtftMs: 100 }), inputs: { q: 'r' } });
    const runId = r.body.runId as string;
    const keys = runKeys({ prefix: stack.prefix }, tenant, runId);
    // While the run is running its header has no TTL.
    expect(await redis.pttl(keys.run)).toBe(-1);
    const v = await waitForRun(url, tenant, runId);
    expect(v.status).toBe('succeeded');
    // Issue 13 item 3: once settled, the run is folded into its compact record, which takes the
    // run's TTL; the rest of its keys are gone with the fold. Before the fold they carry the TTL.
    for (const k of [keys.run, keys.nodes, keys.attempts, keys.decisions, keys.rec]) {
      const ttl = await redis.pttl(k);
      if (ttl === -2) continue; // folded already (nodes, attempts, decisions) or not yet (record)
      expect(ttl, k).toBeGreaterThan(0);
      expect(ttl, k).toBeLessThanOrEqual(2_000);
    }
    await new Promise((res) => setTimeout(res, 2_300));
    expect(await redis.exists(keys.run, keys.nodes, keys.attempts, keys.decisions, keys.outcomes, keys.rec)).toBe(0);
    const after = await http(url, 'GET', `/v1/runs/${tenant}/${runId}`);
    expect(after.status).toBe(404);
  });

  it('issue 13 item 3: runs hold their workflow by reference, one stored copy per definition', async () => {
    const url = stack.urls[0] as string;
    const tenant = await eagerTenant(url, 'wfref');
    const wf = routerChain('refwf', 'billing', 'billing', { routerTtftMs: 10, downTtftMs: 10 });
    const ids: string[] = [];
    for (const q of ['one', 'two']) {
      const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q } });
      expect(r.status).toBe(201);
      ids.push(r.body.runId as string);
    }
    const defs = await redis.hgetall(tenantKeys({ prefix: stack.prefix }, tenant).workflowDefs);
    expect(Object.keys(defs)).toHaveLength(1);
    const [ref, json] = Object.entries(defs)[0] as [string, string];
    expect(JSON.parse(json).name).toBe('refwf');
    for (const runId of ids) {
      const h = await redis.hgetall(runKeys({ prefix: stack.prefix }, tenant, runId).run);
      expect(h.workflowRef).toBe(ref);
      expect(h.workflow).toBeUndefined();
      const v = await waitForRun(url, tenant, runId);
      expect(v.status).toBe('succeeded');
      expect(v.workflow).toBe('refwf');
    }
    // No silent fallback: a run whose definition is missing answers an error, not a half-read run.
    const orphan = 'rorphan1';
    await redis.hset(runKeys({ prefix: stack.prefix }, tenant, orphan).run, { tenant, runId: orphan, status: 'succeeded', createdAtMs: Date.now(), workflowRef: '0'.repeat(32) });
    const other = await http(url, 'GET', `/v1/runs/${tenant}/${orphan}`);
    expect(other.status).toBe(500);
    await redis.del(runKeys({ prefix: stack.prefix }, tenant, orphan).run);
  });
});
