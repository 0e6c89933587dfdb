/**
 * Issue 10 item 4, per-operation deadlines: an operation that would run forever (a user tool
 * that never returns and ignores its abort signal) is stopped when its deadline passes, its
 * attempt fails with DEADLINE_EXCEEDED, and its slot is freed: a worker with ONE slot runs the
 * next job behind it. Also: a job that names no deadline gets the worker's cap
 * (WORKER_MAX_OP_TIMEOUT_MS), and a job's deadline above the cap is cut to the cap. Real worker
 * process; no wall-clock thresholds (the waits are generous; what is asserted is the order).
 */
import type { OpJob } from '@gambit/shared';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { opQueues, readRecord, startWorker, submit, toolJob, waitFor } from '../worker/helpers.js';

const TOOLS_MODULE = fileURLToPath(new URL('../worker/fixtures/tools.mjs', import.meta.url));
const ended = (r: { status: string }) => r.status === 'succeeded' || r.status === 'failed';

describe('per-operation deadlines (issue 10 item 4)', () => {
  const redisUrl = inject('redisUrl');
  let redis: Redis;
  let prefix: string;
  let queues: ReturnType<typeof opQueues>;
  let worker: ServiceProcess;

  beforeAll(async () => {
    redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    prefix = uniquePrefix('deadline');
    queues = opQueues(redis, { prefix });
    // One authoritative slot: a hung operation that kept it would starve everything behind it.
    worker = await startWorker({
      redisUrl,
      prefix,
      env: { GAMBIT_TOOLS_MODULE: TOOLS_MODULE, WORKER_CONCURRENCY: '1', WORKER_MAX_OP_TIMEOUT_MS: '1500' },
    });
  }, 60_000);

  afterAll(async () => {
    await worker?.stop(5_000);
    await queues?.close();
    await redis?.quit();
  });

  const hang = (runId: string, timeoutMs?: number): OpJob => ({
    ...toolJob({ tenant: 'acme', runId, nodeId: 'h', attemptId: 'a1', tool: 'hang', args: {}, effects: 'idempotent' }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

  it('a hung operation fails with DEADLINE_EXCEEDED and frees its only slot for the next job', async () => {
    await submit(redis, { prefix }, queues, hang('h1', 300));
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: 'e1', nodeId: 'x', attemptId: 'a1', tool: 'echo', args: { text: 'after the hang' }, effects: 'none' }));
    const hung = await waitFor(() => readRecord(redis, { prefix }, 'acme', 'h1', 'a1'), ended, 30_000, 'hung attempt');
    expect(hung.status).toBe('failed');
    expect(hung.error).toMatch(/^DEADLINE_EXCEEDED: .*deadline of 300 ms/);
    // Tried once: a deadline is not retried.
    expect(hung.tries).toBe(1);
    const echo = await waitFor(() => readRecord(redis, { prefix }, 'acme', 'e1', 'a1'), ended, 30_000, 'echo behind the hang');
    expect(echo.status).toBe('succeeded');
    expect(echo.output).toBe('after the hang');
    // The echo ran in the slot the hung operation held: it started after the hang was stopped.
    expect(echo.startedAtMs).toBeGreaterThanOrEqual(hung.finishedAtMs ?? Number.POSITIVE_INFINITY);
    expect(await redis.hget(`${prefix}:{tenant:acme}:kv:hang-calls`, 'a1')).toBe('1');
  });

  it('a job without a deadline, or above the cap, is stopped at the worker cap WORKER_MAX_OP_TIMEOUT_MS', async () => {
    await submit(redis, { prefix }, queues, hang('h2'));
    await submit(redis, { prefix }, queues, hang('h3', 3_600_000));
    for (const runId of ['h2', 'h3']) {
      const rec = await waitFor(() => readRecord(redis, { prefix }, 'acme', runId, 'a1'), ended, 30_000, `attempt ${runId}`);
      expect(rec.status).toBe('failed');
      expect(rec.error).toMatch(/^DEADLINE_EXCEEDED: .*deadline of 1500 ms/);
    }
  });
});
