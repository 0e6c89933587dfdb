/**
 * Worker process lifecycle (ARCHITECTURE.md "data that must never be lost"; STYLE.md 9):
 * a worker SIGKILLed mid-job loses nothing (another worker takes the stalled job over and the
 * attempt completes exactly once), and SIGTERM drains authoritative work, hands speculative work
 * back with its partial cost billed, and exits 0.
 */
import { runKeys } from '@gambit/shared/redis';
import { describe, expect, it } from 'vitest';
import { advanceEvents, llmJob, readRecord, startWorker, submit, waitFor, useWorkerFixture } from './helpers.js';

const TEXT = Array.from({ length: 60 }, (_, i) => `token${i}`).join(' ');

describe('worker process lifecycle', () => {
  const fx = useWorkerFixture('life');

  it('SIGKILL mid-job: a second worker picks the stalled job up and the attempt completes exactly once (tries = 2)', async () => {
    const ks = { prefix: fx.prefix };
    const env = { GAMBIT_SIM_TIME_SCALE: '1', WORKER_LOCK_DURATION_MS: '1500', WORKER_STALLED_INTERVAL_MS: '300' };
    const first = await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env, name: 'worker-1' });
    fx.procs.push(first);
    // ~60 tokens at 40 tok/s: about 1.5 s, long enough to be killed in the middle.
    const job = llmJob({ tenant: 'acme', runId: 'r1', nodeId: 'draft', attemptId: 'a1', output: TEXT, ttftMs: 10, tokensPerSec: 40, maxTokens: 500 });
    // Kept once completed (the job's own option wins over the worker's removeOnComplete), so that
    // its BullMQ state can be checked below.
    await submit(fx.redis, ks, fx.queues, job, { keepCompleted: true });
    await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r1', 'a1'),
      (r) => r.status === 'running',
      15_000,
      'attempt running',
    );
    await first.kill();
    expect((await readRecord(fx.redis, ks, 'acme', 'r1', 'a1')).status).toBe('running');

    const second = await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env, name: 'worker-2' });
    fx.procs.push(second);
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r1', 'a1'),
      (r) => r.status === 'succeeded',
      30_000,
      'attempt succeeded on the second worker',
    );
    expect(rec.output).toBe(TEXT);
    expect(rec.tries).toBe(2);
    expect(rec.billedTries).toEqual([2]);
    const bullJob = await waitFor(
      () => fx.queues.ops.getJob('r1-a1'),
      (j) => j?.finishedOn !== undefined,
      10_000,
      'job completed',
    );
    expect(await bullJob?.getState()).toBe('completed');
    expect(bullJob?.returnvalue).toEqual({ code: 'OK', tries: 2 });
    const finished = (await advanceEvents(fx.queues.advance)).filter((e) => e.data.type === 'attempt_finished');
    expect(finished).toHaveLength(1);
    // Cost counted once, for the try that finished (the killed try could report nothing).
    const run = await fx.redis.hgetall(runKeys(ks, 'acme', 'r1').run);
    expect(Number(run.costNanoUsd)).toBe(rec.costNanoUsd);
  });

  it('a stalled attempt past WORKER_MAX_TRIES is failed and announced by the worker, not left running', async () => {
    const ks = { prefix: fx.prefix };
    const env = { GAMBIT_SIM_TIME_SCALE: '1', WORKER_LOCK_DURATION_MS: '1500', WORKER_STALLED_INTERVAL_MS: '300', WORKER_MAX_TRIES: '1' };
    const first = await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env, name: 'worker-1' });
    fx.procs.push(first);
    const job = llmJob({ tenant: 'acme', runId: 'r3', nodeId: 'draft', attemptId: 'a1', output: TEXT, ttftMs: 10, tokensPerSec: 40, maxTokens: 500 });
    await submit(fx.redis, ks, fx.queues, job);
    await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r3', 'a1'),
      (r) => r.status === 'running',
      15_000,
      'attempt running',
    );
    await first.kill();
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env, name: 'worker-2' }));
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r3', 'a1'),
      (r) => r.status === 'failed',
      30_000,
      'attempt failed',
    );
    expect(rec.tries).toBe(2);
    expect(rec.error).toContain('gave up after 1 tries');
    // The worker marks the attempt failed and announces it, then throws UnrecoverableError:
    // BullMQ moves the job to `failed` a moment after the record changed, so wait for it.
    const state = await waitFor(
      async () => (await fx.queues.ops.getJob('r3-a1'))?.getState(),
      (st) => st === 'failed',
      10_000,
      'job failed',
    );
    expect(state).toBe('failed');
    const finished = await waitFor(
      async () => (await advanceEvents(fx.queues.advance)).filter((e) => e.data.type === 'attempt_finished'),
      (f) => f.length >= 1,
      10_000,
      'attempt_finished event',
    );
    expect(finished).toHaveLength(1);
  });

  it('SIGTERM: finishes the authoritative job, hands the speculative one back billed, exits 0', async () => {
    const ks = { prefix: fx.prefix };
    const env = { GAMBIT_SIM_TIME_SCALE: '1', WORKER_DRAIN_TIMEOUT_MS: '15000', LOG_LEVEL: 'debug' };
    const worker = await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env });
    fx.procs.push(worker);
    const auth = llmJob({ tenant: 'acme', runId: 'r2', nodeId: 'answer', attemptId: 'a1', output: TEXT, ttftMs: 10, tokensPerSec: 60, maxTokens: 500 });
    const spec = llmJob({
      tenant: 'acme',
      runId: 'r2',
      nodeId: 'reply',
      attemptId: 's1',
      kind: 'speculative',
      output: `${TEXT} ${TEXT} ${TEXT}`,
      ttftMs: 10,
      tokensPerSec: 30,
      maxTokens: 2000,
    });
    await submit(fx.redis, ks, fx.queues, auth);
    await submit(fx.redis, ks, fx.queues, spec);
    await waitFor(
      async () => [await readRecord(fx.redis, ks, 'acme', 'r2', 'a1'), await readRecord(fx.redis, ks, 'acme', 'r2', 's1')],
      ([a, s]) => a?.status === 'running' && s?.status === 'running',
      15_000,
      'both attempts running',
    );
    worker.proc.kill('SIGTERM');
    expect(await worker.exited()).toBe(0);
    const a = await readRecord(fx.redis, ks, 'acme', 'r2', 'a1');
    expect(a.status).toBe('succeeded');
    expect(a.output).toBe(TEXT);
    // The speculative attempt was cut short: still live (not failed), its partial cost billed.
    const s = await readRecord(fx.redis, ks, 'acme', 'r2', 's1');
    expect(s.status).toBe('running');
    expect(s.usageEstimated).toBe(true);
    expect(s.costNanoUsd).toBeGreaterThan(0);
    expect(s.billedTries).toEqual([1]);
    expect(worker.lines.some((l) => l.includes('"msg":"worker stopped"'))).toBe(true);
    const state = await (await fx.queues.spec.getJob('r2-s1'))?.getState();
    expect(['delayed', 'waiting', 'prioritized']).toContain(state);

    // A new worker finishes the handed-back job; both tries' costs are on the record.
    const next = await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env: { GAMBIT_SIM_TIME_SCALE: '0.05' } });
    fx.procs.push(next);
    const done = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r2', 's1'),
      (r) => r.status === 'succeeded',
      30_000,
      'speculative attempt finished by the next worker',
    );
    expect(done.tries).toBe(2);
    expect(done.billedTries).toEqual([1, 2]);
    expect(done.costNanoUsd).toBeGreaterThan(s.costNanoUsd);
    const run = await fx.redis.hgetall(runKeys(ks, 'acme', 'r2').run);
    expect(Number(run.specCostNanoUsd)).toBe(done.costNanoUsd);
    expect(Number(run.costNanoUsd)).toBe(done.costNanoUsd + a.costNanoUsd);
  });
});
