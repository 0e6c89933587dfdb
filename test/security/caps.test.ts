/**
 * Issue 10 items 4-5 against a real scheduler process: caps refuse a request with 413/422 naming
 * the cap before anything is stored (the amplification case: one template referencing a 100 KB
 * input 1,000 times, which grew the scheduler to 1.6 GB, is refused without being rendered);
 * per-tenant admission answers 429 with Retry-After above the rate and the in-flight cap.
 */
import { readFileSync } from 'node:fs';
import { admissionKeys, tenantKeys } from '@gambit/shared/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, newTenant, type Stack, startStack, submitRun, tenantKey, waitForRun } from '../e2e/harness.js';
import { llm, routerChain } from '../e2e/workflows.js';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

describe('caps and admission (issue 10 items 4-5)', () => {
  let stack: Stack;
  let url: string;

  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'sec-caps', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('amplification: a template repeating a 100 KB input 1,000 times is refused with 413 before it is rendered or stored', async () => {
    const tenant = newTenant('amp');
    const pid = stack.schedulers[0]?.proc.pid as number;
    const before = rssMb(pid);
    const wf = { name: 'amp', nodes: [llm('big', '{{inputs.doc}}'.repeat(1_000), { output: 'x', ttftMs: 10 })], edges: [] };
    const body = { tenant, workflow: wf, inputs: { doc: 'a'.repeat(100_000) } };
    for (let i = 0; i < 5; i++) {
      const r = await submitRun<{ error: { code: string; message: string; field: string } }>(url, body);
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(r.body.error.field).toBe('workflow.nodes[0].prompt');
      expect(r.body.error.message).toContain('maxPromptBytes');
    }
    expect(rssMb(pid) - before).toBeLessThan(150);
    expect(await stack.redis.zcard(tenantKeys({ prefix: stack.prefix }, tenant).runs)).toBe(0);
    expect(await stack.redis.zcard(admissionKeys({ prefix: stack.prefix }, tenant).inflight)).toBe(0);
  });

  it('structure caps set by the operator: 422 naming maxNodes, maxEdges, maxFanOut and maxTokens, at submit and at registration', async () => {
    const tenant = newTenant('caps');
    const set = await http(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { maxNodes: 3, maxFanOut: 1, maxTokens: 100, maxEdges: 2 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ maxNodes: 3, maxFanOut: 1, maxTokens: 100, maxEdges: 2 });
    // A tenant may read its limits, not set them.
    expect((await http(url, 'GET', `/v1/tenants/${tenant}/limits`)).body).toMatchObject({ maxNodes: 3 });
    const a = (id: string, extra: Record<string, unknown> = {}) => llm(id, `step ${id} {{inputs.q}}`, { output: id, ttftMs: 10 }, extra);
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ name: 'n', nodes: [a('a'), a('b'), a('c'), a('d')], edges: [] }, 'workflow.nodes', 'maxNodes'],
      [{ name: 'f', nodes: [a('a'), a('b'), a('c')], edges: [{ from: 'a', to: 'b', type: 'free_text' }, { from: 'a', to: 'c', type: 'free_text' }] }, 'workflow.edges (from "a")', 'maxFanOut'],
      [{ name: 't', nodes: [a('a', { maxTokens: 101 })], edges: [] }, 'workflow.nodes[0].maxTokens', 'maxTokens'],
    ];
    for (const [wf, field, cap] of cases) {
      for (const r of [await submitRun<{ error: { code: string; message: string; field: string } }>(url, { tenant, workflow: wf, inputs: { q: 1 } }), await http<{ error: { code: string; message: string; field: string } }>(url, 'POST', '/v1/workflows', { tenant, workflow: wf })]) {
        expect(r.status, JSON.stringify(r.body)).toBe(422);
        expect(r.body.error.code).toBe('CAP_EXCEEDED');
        expect(r.body.error.field).toBe(field);
        expect(r.body.error.message).toContain(cap);
      }
    }
    expect(await stack.redis.zcard(tenantKeys({ prefix: stack.prefix }, tenant).runs)).toBe(0);
    expect(await stack.redis.hlen(tenantKeys({ prefix: stack.prefix }, tenant).workflows)).toBe(0);
    // A tenant key cannot raise its own limits.
    const own = (await tenantKey(url, tenant)) as string;
    expect((await http(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { maxNodes: 500 }, { auth: own })).status).toBe(403);
  });

  it('admission: 429 with Retry-After above the rate, and above the in-flight cap until runs end', async () => {
    const tenant = await eagerTenant(url, 'rate');
    // One token per 20 s: the five submits below cannot outlast a refill even on a loaded machine
    // (at 0.5/s a fourth submit more than 2 s after the first was admitted: load 15, twice).
    expect((await http(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { ratePerSec: 0.05, burst: 3 })).status).toBe(200);
    const wf = routerChain('ratewf', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await submitRun<{ error?: { code: string } }>(url, { tenant, workflow: wf, inputs: { q: `r${i}` } }));
    expect(answers.slice(0, 3).map((r) => r.status)).toEqual([201, 201, 201]);
    for (const r of answers.slice(3)) {
      expect(r.status).toBe(429);
      expect(r.body.error?.code).toBe('RATE_LIMITED');
    }
    const raw = await fetch(`${url}/v1/runs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminKey}` }, body: JSON.stringify({ tenant, workflow: wf, inputs: { q: 'x' } }) });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await raw.text();

    // In-flight cap: two slow runs fill it; the third waits until one ends.
    const t2 = await eagerTenant(url, 'inflight');
    expect((await http(url, 'PUT', `/v1/admin/tenants/${t2}/limits`, { maxInFlightRuns: 2 })).status).toBe(200);
    const slow = routerChain('slowwf', 'billing', 'billing', { routerTtftMs: 1_500, downTtftMs: 50 });
    const r1 = await submitRun<{ runId: string }>(url, { tenant: t2, workflow: slow, inputs: { q: '1' } });
    const r2 = await submitRun<{ runId: string }>(url, { tenant: t2, workflow: slow, inputs: { q: '2' } });
    expect([r1.status, r2.status]).toEqual([201, 201]);
    const r3 = await submitRun<{ error: { code: string } }>(url, { tenant: t2, workflow: slow, inputs: { q: '3' } });
    expect(r3.status).toBe(429);
    expect(r3.body.error.code).toBe('TOO_MANY_RUNS');
    await waitForRun(url, t2, r1.body.runId);
    await waitForRun(url, t2, r2.body.runId);
    expect((await submitRun(url, { tenant: t2, workflow: slow, inputs: { q: '4' } })).status).toBe(201);
  });
});
