/**
 * Issue 11 D3 against a real scheduler process and its own redis-server: while Redis is down the
 * API answers 503 in the one error shape within 1 s (it used to hang for 40 s), `/healthz` still
 * answers, and a submit its client gave up on never creates its run when Redis comes back: not
 * when Redis was dead (no offline queue), not when it was stalled (SIGSTOP: the command timeout,
 * no re-send after reconnect, and the deadline checked inside the write).
 */
import { createRun, initialNodeState, runKeys } from '@gambit/shared/redis';
import { type RedisHandle, startRedis } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineRunScripts } from '@gambit/shared/redis';
import { http, newTenant, type Stack, startStack } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await f();
  return { ms: performance.now() - t0, value };
}

async function until(what: string, f: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('D3: the API fails fast while Redis is down and never acts later', () => {
  let redis: RedisHandle | undefined;
  let stack: Stack;
  let url: string;
  let port: number;

  beforeAll(async () => {
    redis = await startRedis();
    port = redis.port;
    stack = await startStack(
      { kind: 'single', url: redis.url },
      { label: 'sec-d3', schedulers: 1, workers: 0, schedulerEnv: { API_REDIS_COMMAND_TIMEOUT_MS: '500', API_DEADLINE_MS: '1000' } },
    );
    url = stack.urls[0] as string;
    // The test's own client of the stack reports the outage; it is expected here.
    stack.redis.on('error', () => {});
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  it('Redis killed: 503 within 1 s on every kind of request, /healthz 200; the given-up submit is never created', async () => {
    const tenant = newTenant('d3');
    const wf = routerChain('d3wf', 'billing', 'billing');
    expect((await http(url, 'POST', '/v1/workflows', { tenant, workflow: wf })).status).toBe(201);
    await redis?.stop();
    redis = undefined;
    for (const [method, path, body, auth] of [
      ['POST', '/v1/runs', { tenant, workflow: 'd3wf', inputs: { q: 'x' }, runId: 'gave-up' }, undefined],
      ['POST', '/v1/runs', { tenant, workflow: wf, inputs: { q: 'x' }, runId: 'gave-up-2' }, stack.adminKey],
      ['GET', `/v1/runs/${tenant}/gave-up`, undefined, stack.adminKey],
      ['GET', `/v1/tenants/${tenant}/config`, undefined, stack.adminKey],
      ['GET', '/v1/workflows', undefined, `gmb_${'B'.repeat(43)}`],
    ] as Array<[string, string, unknown, string | undefined]>) {
      const r = await timed(() => http<{ error: { code: string; message: string } }>(url, method, path, body, auth === undefined ? {} : { auth }));
      expect(r.ms, `${method} ${path}`).toBeLessThan(1_000);
      expect(r.value.status, `${method} ${path} ${JSON.stringify(r.value.body)}`).toBe(503);
      expect(r.value.body.error.code).toBe('UNAVAILABLE');
    }
    const h = await timed(() => fetch(`${url}/healthz`));
    expect(h.value.status).toBe(200);
    expect(h.ms).toBeLessThan(1_000);
    // Redis returns (empty: it keeps nothing on disk here); nothing arrives later.
    redis = await startRedis({ port });
    const check = new Redis(redis.url);
    try {
      await until('the API is back', async () => (await http(url, 'GET', '/v1/workflows', undefined, { auth: stack.adminKey })).status !== 503, 15_000);
      await new Promise((r) => setTimeout(r, 1_500));
      for (const id of ['gave-up', 'gave-up-2']) expect(await check.exists(runKeys({ prefix: stack.prefix }, tenant, id).run)).toBe(0);
    } finally {
      check.disconnect();
    }
  });

  it('Redis stalled (SIGSTOP): the submit times out with 503 and does not create its run after SIGCONT', async () => {
    const check = new Redis((redis as RedisHandle).url);
    try {
      const pid = Number(/process_id:(\d+)/.exec(await check.info('server'))?.[1]);
      const tenant = newTenant('d3stall');
      expect((await http(url, 'PUT', `/v1/tenants/${tenant}/config`, { alpha: 0.5 })).status).toBe(200);
      process.kill(pid, 'SIGSTOP');
      let r: Awaited<ReturnType<typeof http>>;
      try {
        r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('st', 'billing', 'billing'), inputs: { q: 'x' }, runId: 'stalled' });
        // Still stalled a while after the answer, so anything sent sits in Redis's socket.
        await new Promise((res) => setTimeout(res, 1_500));
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      expect(r.status).toBe(503);
      await new Promise((res) => setTimeout(res, 2_000));
      expect(await check.exists(runKeys({ prefix: stack.prefix }, tenant, 'stalled').run)).toBe(0);
    } finally {
      check.disconnect();
    }
  });

  it('the deadline travels into the write: createRun past its deadline (on Redis’s clock) writes nothing', async () => {
    const r = new Redis((redis as RedisHandle).url);
    try {
      defineRunScripts(r);
      const ks = { prefix: stack.prefix };
      const ref = { tenant: 'd3t', runId: 'late' };
      await expect(createRun(r, ks, { ...ref, header: { status: 'running' }, nodes: { a: initialNodeState() }, planDecisions: [], deadlineMs: Date.now() - 1 })).rejects.toThrow(/deadline passed/);
      expect(await r.exists(runKeys(ks, ref.tenant, ref.runId).run)).toBe(0);
      expect(await createRun(r, ks, { ...ref, header: { status: 'running' }, nodes: { a: initialNodeState() }, planDecisions: [], deadlineMs: Date.now() + 60_000 })).toBe(true);
      expect(await r.hget(runKeys(ks, ref.tenant, ref.runId).run, 'deadlineMs')).toBeNull();
    } finally {
      r.disconnect();
    }
  });
});
