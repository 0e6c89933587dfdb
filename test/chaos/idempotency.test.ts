/**
 * Issue 11 D2: an irreversible tool is never re-run blindly after a crash. A real worker process
 * is SIGKILLed while it runs the tool, after the effect reached the outside world and before the
 * result was recorded; BullMQ hands the job to a replacement worker (a new try of the attempt).
 * - `charge_card` honours the idempotency key (run, node, epoch): the retry runs under the same
 *   key and the card is charged once.
 * - `ship_parcel` takes no key: the node stops in `needs_attention` (nothing runs it again), the
 *   operator resolves it through the API as succeeded (its output flows downstream) or failed.
 * On the code before D2 both cases applied the effect twice.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolKeys } from '@gambit/shared/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { http, newTenant, type RunView, type Stack, startStack, submitRun, tenantKey, waitForRun, waitForView } from '../e2e/harness.js';

const TOOLS = fileURLToPath(new URL('../../packages/chaos/src/effect-tools.mjs', import.meta.url));

function effects(dir: string): Array<Record<string, unknown>> {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
}

describe('D2: irreversible tools after a worker crash (single redis)', () => {
  let stack: Stack;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gambit-d2-'));
    stack = await startStack(
      { kind: 'single', url: inject('redisUrl') },
      { label: 'chaos-d2', schedulers: 1, workers: 1, workerEnv: { GAMBIT_TOOLS_MODULE: TOOLS, CHAOS_EFFECT_DIR: dir } },
    );
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Kills the worker that runs `nodeId` once the tool's effect is visible, then starts another. */
  async function crashMidTool(url: string, tenant: string, runId: string, nodeId: string, applied: () => Promise<boolean>, name: string): Promise<void> {
    await waitForView(url, tenant, runId, (v) => v.nodes[nodeId].attempts[0]?.status === 'running');
    const deadline = Date.now() + 20_000;
    while (!(await applied())) {
      if (Date.now() > deadline) throw new Error(`the effect of ${nodeId} never appeared`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const victim = stack.workers.at(-1);
    await victim?.kill();
    await stack.startWorker(name, { GAMBIT_TOOLS_MODULE: TOOLS, CHAOS_EFFECT_DIR: dir });
  }

  it('charge_card retries under the same idempotency key: charged once, the run succeeds', async () => {
    const url = stack.urls[0] as string;
    const tenant = newTenant('d2charge');
    const wf = {
      name: 'd2charge',
      nodes: [
        { id: 'pay', kind: 'tool', tool: 'charge_card', args: { amountCents: 1234, confirmMs: 4000 } },
        { id: 'after', kind: 'tool', tool: 'echo', args: { text: 'receipt {{nodes.pay.output}}' } },
      ],
      edges: [{ from: 'pay', to: 'after', type: 'passthrough', speculate: false }],
    };
    const r = await submitRun(url, { tenant, workflow: wf, inputs: {} });
    expect(r.status).toBe(201);
    const runId = r.body.runId as string;
    const charges = toolKeys({ prefix: stack.prefix }, tenant).charges;
    await crashMidTool(url, tenant, runId, 'pay', async () => (await stack.redis.llen(charges)) > 0, 'worker-d2-charge');
    const v = await waitForRun(url, tenant, runId, 60_000);
    expect(v.status).toBe('succeeded');
    expect(v.nodes.after.output).toBe('receipt {"charged":1234}');
    const pay = v.nodes.pay.attempts as RunView[];
    expect(pay).toHaveLength(1);
    expect(pay[0].tries).toBeGreaterThanOrEqual(2);
    const list = (await stack.redis.lrange(charges, 0, -1)).map((c) => JSON.parse(c) as { idempotencyKey: string; tryNo: number });
    expect(list).toHaveLength(1);
    expect(list[0]?.idempotencyKey).toBe(`gambit:${tenant}:${runId}:pay:${pay[0].epoch}`);
    expect(list[0]?.tryNo).toBe(1);
  });

  it('ship_parcel (no key) stops in needs_attention; an operator resolves it as succeeded and the run goes on', async () => {
    const url = stack.urls[0] as string;
    const tenant = newTenant('d2ship');
    const wf = {
      name: 'd2ship',
      nodes: [
        { id: 'ship', kind: 'tool', tool: 'ship_parcel', args: { parcel: 'p-1', holdMs: 4000 } },
        { id: 'after', kind: 'tool', tool: 'echo', args: { text: 'tracking {{nodes.ship.output}}' } },
      ],
      edges: [{ from: 'ship', to: 'after', type: 'passthrough', speculate: false }],
    };
    const r = await submitRun(url, { tenant, workflow: wf, inputs: {} });
    const runId = r.body.runId as string;
    const mine = () => effects(dir).filter((e) => e.runId === runId);
    await crashMidTool(url, tenant, runId, 'ship', async () => mine().length > 0, 'worker-d2-ship');
    const v = await waitForView(url, tenant, runId, (x) => x.nodes.ship.state === 'needs_attention', 30_000);
    expect(v.status).toBe('running');
    expect(v.nodes.ship.attempts[0].status).toBe('needs_attention');
    expect(v.nodes.ship.attempts[0].attention).toMatch(/ship_parcel.*no idempotency key/);
    expect(v.nodes.after.state).toBe('pending');
    // Nothing ran it again, and nothing will: give the sweep and BullMQ time to try.
    await new Promise((res) => setTimeout(res, 2500));
    expect(mine()).toHaveLength(1);

    // Operator only: the tenant's own key may not resolve what its tool did.
    const asTenant = await http(url, 'POST', `/v1/runs/${tenant}/${runId}/nodes/ship/attention`, { resolution: 'succeeded', output: 'mine' }, { auth: (await tenantKey(url, tenant)) ?? null });
    expect(asTenant.status).toBe(403);
    const listed = await http<{ attention: Array<Record<string, unknown>> }>(url, 'GET', `/v1/attention?tenant=${tenant}`);
    expect(listed.status).toBe(200);
    expect(listed.body.attention).toEqual([expect.objectContaining({ tenant, runId, nodeId: 'ship', attemptId: v.nodes.ship.attempts[0].attemptId })]);

    // Bad input names the field and changes nothing.
    const bad = await http<{ error: { code: string; issues: Array<{ path: string }> } }>(url, 'POST', `/v1/runs/${tenant}/${runId}/nodes/ship/attention`, { resolution: 'succeeded' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i) => i.path)).toContain('output');
    const notWaiting = await http(url, 'POST', `/v1/runs/${tenant}/${runId}/nodes/after/attention`, { resolution: 'failed', error: 'x' });
    expect(notWaiting.status).toBe(409);

    const ok = await http<Record<string, unknown>>(url, 'POST', `/v1/runs/${tenant}/${runId}/nodes/ship/attention`, { resolution: 'succeeded', output: 'shipped by hand' });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('succeeded');
    const done = await waitForRun(url, tenant, runId, 30_000);
    expect(done.status).toBe('succeeded');
    expect(done.nodes.after.output).toBe('tracking shipped by hand');
    expect(done.nodes.ship.attempts[0].resolvedBy).toBe('operator');
    expect(mine()).toHaveLength(1);
    const again = await http(url, 'POST', `/v1/runs/${tenant}/${runId}/nodes/ship/attention`, { resolution: 'succeeded', output: 'twice' });
    expect(again.status).toBe(409);
    const after = await http<{ attention: unknown[] }>(url, 'GET', `/v1/attention?tenant=${tenant}`);
    expect(after.body.attention).toEqual([]);
  });

  it('a needs_attention node resolved as failed fails the run', async () => {
    const url = stack.urls[0] as string;
    const tenant = newTenant('d2fail');
    const wf = { name: 'd2fail', nodes: [{ id: 'ship', kind: 'tool', tool: 'ship_parcel', args: { parcel: 'p-2', holdMs: 4000 } }] };
    const r = await submitRun(url, { tenant, workflow: wf, inputs: {} });
    const runId = r.body.runId as string;
    await crashMidTool(url, tenant, runId, 'ship', async () => effects(dir).some((e) => e.runId === runId), 'worker-d2-fail');
    await waitForView(url, tenant, runId, (x) => x.nodes.ship.state === 'needs_attention', 30_000);
    const res = await http<Record<string, unknown>>(url, 'POST', `/v1/runs/${tenant}/${runId}/nodes/ship/attention`, { resolution: 'failed', error: 'carrier lost it' });
    expect(res.status).toBe(200);
    const done = await waitForRun(url, tenant, runId, 30_000);
    expect(done.status).toBe('failed');
    expect(done.reason).toContain('carrier lost it');
    expect(effects(dir).filter((e) => e.runId === runId)).toHaveLength(1);
  });
});
