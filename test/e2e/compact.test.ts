/**
 * Issue 13 item 3 and issue 10 items 5/9, with real scheduler and worker processes: an ended run
 * is folded into its compact record once every attempt is settled, and every reader still works
 * from it (GET /v1/runs/:id, its decisions, GET /v1/runs, the event stream, the stats); outputs
 * stay only when the tenant keeps them; records expire after the tenant's retention, which the
 * operator caps; beyond the tenant's runs-kept cap the oldest ended records are dropped.
 */
import { runKeys, tenantKeys } from '@gambit/shared/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, tenantKey, waitForRun } from './harness.js';
import { routerChain } from './workflows.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('compact ended runs and per-tenant retention (single redis)', () => {
  let stack: Stack;
  let url: string;
  const redis = new Redis(inject('redisUrl'));
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-compact', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await redis.quit();
  });

  /** Waits until the run is folded (its record exists), then answers its keys. */
  async function folded(tenant: string, runId: string) {
    const k = runKeys({ prefix: stack.prefix }, tenant, runId);
    const deadline = Date.now() + 30_000;
    while ((await redis.exists(k.rec)) === 0) {
      if (Date.now() > deadline) throw new Error(`run ${runId} not folded in 30 s: ${JSON.stringify(await redis.hgetall(k.run))}`);
      await sleep(50);
    }
    return k;
  }

  /** Runs a miss and a hit of the router chain on `tenant`; answers their ids and the views seen while they were not folded yet. */
  async function twoRuns(tenant: string): Promise<string[]> {
    const ids: string[] = [];
    for (const [name, guess] of [
      ['cmiss', 'technical'],
      ['chit', 'billing'],
    ] as const) {
      const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain(name, 'billing', guess, { routerTtftMs: 400, downTtftMs: 300 }), inputs: { q: `secret question ${name}` } });
      expect(r.status).toBe(201);
      ids.push(r.body.runId as string);
    }
    return ids;
  }

  it('outputs off: a folded run keeps states, attempts, money, decisions and outcomes, and no inputs, outputs or guesses', async () => {
    const tenant = await eagerTenant(url, 'cmpoff', { keepOutputs: false });
    const ids = await twoRuns(tenant);
    let speculative = 0;
    let outcomes = 0;
    for (const runId of ids) {
      await waitForRun(url, tenant, runId);
      const k = await folded(tenant, runId);
      expect(await redis.exists(k.nodes, k.attempts, k.decisions, k.outcomes, k.effects, k.intents)).toBe(0);
      const h = await redis.hgetall(k.run);
      expect(h.compact).toBe('1');
      expect(h.inputs).toBeUndefined();
      const rec = (await redis.get(k.rec)) as string;
      expect(rec).not.toContain('secret question');
      expect(rec).not.toContain('answer for billing');
      const v: RunView = (await http(url, 'GET', `/v1/runs/${tenant}/${runId}`)).body;
      expect(v.status).toBe('succeeded');
      expect(v.compact).toEqual({ outputsKept: false, effectCount: 0 });
      // The ledger: the run's cost equals the sum over its attempts, as the API shows it.
      const attempts = Object.values<RunView>(v.nodes).flatMap((n) => n.attempts);
      const sum = attempts.reduce((s: number, a: RunView) => s + a.costNanoUsd, 0);
      expect(sum).toBeGreaterThan(0);
      expect(v.dollars.total.nanoUsd).toBe(sum);
      expect(Number(h.costNanoUsd)).toBe(sum);
      for (const n of Object.values<RunView>(v.nodes)) {
        expect(n.state).toBe('succeeded');
        expect(n.output).toBeNull();
        // A node completed by a speculation hit was never launched for real: no startedAtMs.
        expect(n.finishedAtMs).toBeGreaterThanOrEqual(n.startedAtMs ?? v.createdAtMs);
      }
      for (const a of attempts) {
        expect(a.finishedAtMs).toBeGreaterThan(0);
        expect(['succeeded', 'cancelled', 'superseded']).toContain(a.status);
        expect(a.output).toBeUndefined();
      }
      speculative += attempts.filter((a: RunView) => a.kind === 'speculative').length;
      outcomes += v.outcomes.length;
      expect(v.decisions.length).toBeGreaterThan(0);
      const d = await http<{ decisions: unknown[] }>(url, 'GET', `/v1/runs/${tenant}/${runId}/decisions`);
      expect(d.status).toBe(200);
      expect(d.body.decisions).toEqual(v.decisions);
    }
    // The tenant speculated (a miss and a hit), and both were scored before the fold.
    expect(speculative).toBeGreaterThanOrEqual(2);
    expect(outcomes).toBeGreaterThanOrEqual(2);
    // Lists and stats read folded runs.
    const list = await http<{ runs: RunView[] }>(url, 'GET', `/v1/runs?tenant=${tenant}&limit=10`);
    expect(list.status).toBe(200);
    expect(list.body.runs.map((r) => r.runId).sort()).toEqual([...ids].sort());
    for (const r of list.body.runs) expect(r.status).toBe('succeeded');
    const stats = await http<{ series: RunView[] }>(url, 'GET', `/v1/stats?tenant=${tenant}&since=${Date.now() - 600_000}`);
    expect(stats.status).toBe(200);
    const total = stats.body.series.reduce((s: number, x: RunView) => s + x.total.hits + x.total.misses + x.total.cancelled, 0);
    expect(total).toBeGreaterThanOrEqual(2);
    // The event stream of a folded run: its state, then `end`.
    const key = await tenantKey(url, tenant);
    const res = await fetch(`${url}/v1/runs/${tenant}/${ids[0]}/events`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const ev of ['event: run', 'event: node', 'event: attempt', 'event: decision', 'event: outcome', 'event: end']) expect(text).toContain(ev);
  });

  it('outputs on (keepOutputs, the default): the folded run shows its outputs as before the fold', async () => {
    const tenant = await eagerTenant(url, 'cmpon');
    const cfg = await http(url, 'GET', `/v1/tenants/${tenant}/config`);
    expect(cfg.body.keepOutputs).toBe(true);
    for (const runId of await twoRuns(tenant)) {
      await waitForRun(url, tenant, runId);
      const k = await folded(tenant, runId);
      expect((await redis.hgetall(k.run)).inputs).toContain('secret question');
      const v: RunView = (await http(url, 'GET', `/v1/runs/${tenant}/${runId}`)).body;
      expect(v.compact.outputsKept).toBe(true);
      expect(v.nodes.route.output).toBe('billing');
      expect(v.nodes.answer.output).toBe('answer for billing');
      const committed = v.nodes.answer.attempts.find((a: RunView) => a.attemptId === v.nodes.answer.attempts.at(-1).attemptId && a.status === 'succeeded');
      expect(committed?.output).toBe('answer for billing');
      const spec = v.nodes.answer.attempts.find((a: RunView) => a.kind === 'speculative');
      expect(spec?.assumed?.route).toBeDefined();
    }
  });

  it("retention: a tenant's retentionSec sets the TTL of its ended runs, capped by the operator's maxRetentionSec; then the API answers 404", async () => {
    const tenant = await eagerTenant(url, 'cmpret');
    const capped = await http(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { maxRetentionSec: 3600 });
    expect(capped.status).toBe(200);
    expect(capped.body.maxRetentionSec).toBe(3600);
    const over = await http(url, 'PUT', `/v1/tenants/${tenant}/config`, { retentionSec: 3601 });
    expect(over.status).toBe(422);
    expect(JSON.stringify(over.body)).toContain('maxRetentionSec');
    const ok = await http(url, 'PUT', `/v1/tenants/${tenant}/config`, { retentionSec: 2 });
    expect(ok.status).toBe(200);
    expect(ok.body.retentionSec).toBe(2);
    // The scheduler caches configuration briefly (docs/runtime.md): a run submitted after that.
    await sleep(1_200);
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('cret', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 }), inputs: { q: 'r' } });
    const runId = r.body.runId as string;
    const k0 = runKeys({ prefix: stack.prefix }, tenant, runId);
    expect(await redis.pttl(k0.run)).toBe(-1);
    await waitForRun(url, tenant, runId);
    const k = await folded(tenant, runId);
    for (const key of [k.run, k.rec]) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(2_000);
    }
    await sleep(2_300);
    expect(await redis.exists(k.run, k.rec)).toBe(0);
    expect((await http(url, 'GET', `/v1/runs/${tenant}/${runId}`)).status).toBe(404);
  });

  it('runs kept: beyond the tenant maxRunsKept the oldest ended records are dropped', async () => {
    const tenant = await eagerTenant(url, 'cmpkeep');
    expect((await http(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { maxRunsKept: 2 })).status).toBe(200);
    await sleep(1_200);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('ckeep', 'billing', 'billing', { routerTtftMs: 20, downTtftMs: 20 }), inputs: { q: `k${i}` } });
      const runId = r.body.runId as string;
      ids.push(runId);
      await waitForRun(url, tenant, runId);
      await folded(tenant, runId);
    }
    const gone = ids.slice(0, 2);
    const kept = ids.slice(2);
    for (const runId of gone) {
      const k = runKeys({ prefix: stack.prefix }, tenant, runId);
      expect(await redis.exists(k.run, k.rec), runId).toBe(0);
      expect((await http(url, 'GET', `/v1/runs/${tenant}/${runId}`)).status).toBe(404);
    }
    for (const runId of kept) expect((await http(url, 'GET', `/v1/runs/${tenant}/${runId}`)).status).toBe(200);
    expect(await redis.zrange(tenantKeys({ prefix: stack.prefix }, tenant).ended, '0', '-1')).toEqual(kept);
    const list = await http<{ runs: RunView[] }>(url, 'GET', `/v1/runs?tenant=${tenant}&limit=10`);
    expect(list.body.runs.map((r) => r.runId).sort()).toEqual([...kept].sort());
  });
});
