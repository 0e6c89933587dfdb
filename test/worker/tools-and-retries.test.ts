/**
 * Tools and retry groups through the real worker process: user tools from GAMBIT_TOOLS_MODULE,
 * retryable errors retried with BullMQ backoff, retry-after honoured with a delayed retry (not
 * counted against the job's attempts), non-retryable errors failing the attempt at once; the
 * built-in kv_lookup and http_get tools; and the simulated provider's drift override (M9 tests).
 */
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { controlKeys, toolKeys } from '@gambit/shared/redis';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { advanceEvents, llmJob, opQueues, readRecord, startWorker, submit, toolJob, waitFor } from './helpers.js';

const TOOLS_MODULE = fileURLToPath(new URL('./fixtures/tools.mjs', import.meta.url));

describe('worker tools, retries and simulation overrides', () => {
  const redisUrl = inject('redisUrl');
  let redis: Redis;
  let prefix: string;
  let queues: ReturnType<typeof opQueues>;
  let worker: ServiceProcess;
  let http: Server;
  let httpPort = 0;

  beforeAll(async () => {
    http = createServer((req, res) => {
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(`you asked for ${req.url}`);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const addr = http.address();
    httpPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  beforeEach(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    prefix = uniquePrefix('tools');
    queues = opQueues(redis, { prefix });
    // The local test server is an origin the operator trusts (the outbound guard refuses loopback otherwise).
    worker = await startWorker({ redisUrl, prefix, env: { GAMBIT_TOOLS_MODULE: TOOLS_MODULE, OUTBOUND_TRUSTED_ORIGINS: `http://127.0.0.1:${httpPort}` } });
  });
  afterEach(async () => {
    await worker.stop(5_000);
    await queues.close();
    await redis.quit();
  });

  const settle = (runId: string, attemptId: string) =>
    waitFor(
      () => readRecord(redis, { prefix }, 'acme', runId, attemptId),
      (r) => r.status === 'succeeded' || r.status === 'failed',
      20_000,
      `attempt ${attemptId} settled`,
    );

  it('a retryable error is retried with backoff and then succeeds', async () => {
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'r1', nodeId: 't', attemptId: 'a1', tool: 'flaky', args: { failTimes: 1 }, effects: 'idempotent' }), {
      attempts: 3,
    });
    const rec = await settle('r1', 'a1');
    expect(rec).toMatchObject({ status: 'succeeded', output: 'ok after 2 calls', tries: 2 });
  });

  it('the last retryable failure fails the attempt and tells the scheduler', async () => {
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'r2', nodeId: 't', attemptId: 'a1', tool: 'flaky', args: { failTimes: 9 }, effects: 'idempotent' }), {
      attempts: 2,
    });
    const rec = await settle('r2', 'a1');
    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/^PROVIDER_UNAVAILABLE:/);
    expect(rec.tries).toBe(2);
    const ev = await waitFor(
      () => advanceEvents(queues.advance),
      (e) => e.length > 0,
      5_000,
      'event',
    );
    expect(ev.map((e) => e.data.type)).toEqual(['attempt_finished']);
  });

  it('retry-after is honoured with a delayed retry that does not use up the job attempts', async () => {
    const t0 = Date.now();
    await submit(
      redis,
      { prefix },
      queues,
      toolJob({ tenant: 'acme', runId: 'r3', nodeId: 't', attemptId: 'a1', tool: 'flaky', args: { failTimes: 2, mode: 'after', retryAfterMs: 300 }, effects: 'idempotent' }),
      { attempts: 1 },
    );
    const rec = await settle('r3', 'a1');
    expect(rec).toMatchObject({ status: 'succeeded', output: 'ok after 3 calls', tries: 3 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  });

  it('a non-retryable error fails the attempt at once', async () => {
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'r4', nodeId: 't', attemptId: 'a1', tool: 'flaky', args: { failTimes: 1, mode: 'fatal' }, effects: 'idempotent' }), {
      attempts: 5,
    });
    const rec = await settle('r4', 'a1');
    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/^PROVIDER_AUTH:/);
    expect(rec.tries).toBe(1);
  });

  it('kv_lookup reads the tenant table; http_get fetches a local URL', async () => {
    await redis.hset(toolKeys({ prefix }, 'acme').kv('customers'), 'c42', 'gold');
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'r5', nodeId: 'k', attemptId: 'a1', tool: 'kv_lookup', args: { table: 'customers', key: 'c42' }, effects: 'idempotent' }));
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'r5', nodeId: 'h', attemptId: 'a2', tool: 'http_get', args: { url: `http://127.0.0.1:${httpPort}/missing` }, effects: 'none' }));
    expect((await settle('r5', 'a1')).output).toBe('gold');
    expect(JSON.parse((await settle('r5', 'a2')).output ?? '')).toEqual({ status: 404, body: 'you asked for /missing' });
  });

  it('M9 drift override: the sim hash replaces the node outcomes; an invalid override fails loudly', async () => {
    const base = llmJob({ tenant: 'acme', runId: 'r6', nodeId: 'route', attemptId: 'a1', workflow: 'support' });
    const withOutcomes = { ...base, op: { ...base.op, simulate: { outcomes: [{ value: 'billing', weight: 1 }] } } } as typeof base;
    await redis.hset(controlKeys({ prefix }).sim, 'acme/support/route', JSON.stringify([{ value: 'refund', weight: 1 }]));
    await submit(redis, { prefix }, queues, withOutcomes);
    expect((await settle('r6', 'a1')).output).toBe('refund');
    await redis.hset(controlKeys({ prefix }).sim, 'acme/support/route', JSON.stringify([{ value: 'refund', weight: -1 }]));
    await submit(redis, { prefix }, queues, { ...withOutcomes, attemptId: 'a2' });
    const bad = await settle('r6', 'a2');
    expect(bad.status).toBe('failed');
    expect(bad.error).toContain('sim["acme/support/route"][0].weight');
  });
});
