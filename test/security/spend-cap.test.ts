/**
 * Issue 10 item 3, second half: a per-tenant cap on ALL spend (authoritative included) per UTC
 * day or month, on real processes (scheduler, worker, Redis). Each run's settled cost (the sum
 * of its attempts' billed cost) is booked into the tenant's spend ledger when it ends; a submit
 * while the period's spend is at or above `spendCapUsd` is refused with 402 SPEND_CAP_REACHED
 * naming `spendCapUsd`, before anything is stored; other tenants are not affected; raising the
 * cap admits again.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, submitRun, tenantKey, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('spend cap per period (issue 10 item 3)', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'spendcap', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('books each run’s settled cost and refuses submits once the period’s spend reaches the cap (402 naming spendCapUsd)', async () => {
    const tenant = await eagerTenant(url, 'capped');
    const other = await eagerTenant(url, 'uncapped');
    const wf = routerChain('capwf', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 });

    const bad = await http<RunView>(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { spendCapUsd: -1 });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body.error)).toContain('spendCapUsd');
    const badPeriod = await http<RunView>(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { spendCapPeriod: 'week' });
    expect(badPeriod.status).toBe(400);
    // Only the operator sets it.
    const byTenant = await http<RunView>(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { spendCapUsd: 1 }, { auth: (await tenantKey(url, tenant)) ?? null });
    expect(byTenant.status).toBe(403);

    // A cap of one nano-dollar: the first run is admitted (nothing spent yet), then none.
    const put = await http<RunView>(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { spendCapUsd: 0.000000001, spendCapPeriod: 'day' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ spendCapUsd: 0.000000001, spendCapPeriod: 'day' });
    const before = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/spend`);
    expect(before.body).toMatchObject({ period: 'day', spentNanoUsd: 0, spendCapUsd: 0.000000001 });
    expect(before.body.periodKey).toBe(`day:${new Date().toISOString().slice(0, 10)}`);

    const first = await submitRun(url, { tenant, workflow: wf, inputs: { q: 'a' } });
    expect(first.status).toBe(201);
    const view = await waitForRun(url, tenant, first.body.runId as string);
    expect(view.status).toBe('succeeded');
    const spent = await until(
      async () => (await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/spend`)).body,
      (b) => b.spentNanoUsd > 0,
    );
    // Booked from the real ledger: exactly the run's billed total (all its attempts).
    const settled = await http<RunView>(url, 'GET', `/v1/runs/${tenant}/${first.body.runId as string}`);
    expect(settled.body.dollars.total.nanoUsd).toBeGreaterThan(0);
    expect(spent.spentNanoUsd).toBe(settled.body.dollars.total.nanoUsd);

    const refused = await submitRun<RunView>(url, { tenant, workflow: wf, inputs: { q: 'b' } });
    expect(refused.status).toBe(402);
    expect(refused.body.error).toMatchObject({ code: 'SPEND_CAP_REACHED', field: 'spendCapUsd' });
    expect(refused.body.error.message).toContain('spendCapUsd');
    // Refused before anything was stored: the tenant's run list holds only the first run.
    const listed = await http<RunView>(url, 'GET', `/v1/runs?tenant=${tenant}`);
    expect((listed.body.runs as RunView[]).map((r) => r.runId)).toEqual([first.body.runId]);

    // Another tenant is not affected.
    expect((await submitRun(url, { tenant: other, workflow: wf, inputs: { q: 'c' } })).status).toBe(201);

    // The month's spend includes the day's: a monthly cap at the same amount also refuses.
    expect((await http<RunView>(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { spendCapPeriod: 'month' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_100)); // the limits cache (1 s)
    const monthly = await submitRun<RunView>(url, { tenant, workflow: wf, inputs: { q: 'd' } });
    expect(monthly.status).toBe(402);
    expect(monthly.body.error.message).toContain('month:');

    // Raising the cap admits again.
    expect((await http<RunView>(url, 'PUT', `/v1/admin/tenants/${tenant}/limits`, { spendCapUsd: 1_000 })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await submitRun(url, { tenant, workflow: wf, inputs: { q: 'e' } })).status).toBe(201);
  });
});
