/**
 * Helpers for the worker's cross-process tests: create an attempt record and enqueue its job the
 * way the scheduler does (record first, status `queued`, then the OpJob on `ops` or `spec` with
 * the queue prefix), start the real worker (`services/worker/dist/main.js`) as a child process,
 * and poll Redis for results.
 */
import { fileURLToPath } from 'node:url';
import type { AttemptRecord, OpJob } from '@gambit/shared';
import { AdvanceStream, decodeAttempt, type KeySpace, QUEUES, queuePrefix, type RedisLike, runKeys } from '@gambit/shared/redis';
import { type ServiceProcess, startProcess, uniquePrefix } from '@gambit/testkit';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, inject } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../estimator/tcp-proxy.js';

export const WORKER_MAIN = fileURLToPath(new URL('../../services/worker/dist/main.js', import.meta.url));

export interface AttemptInit {
  readonly tenant: string;
  readonly runId: string;
  readonly nodeId: string;
  readonly attemptId: string;
  readonly kind?: 'authoritative' | 'speculative';
  readonly epoch?: number;
}

/** Writes the attempt record as the scheduler does before enqueueing (status `queued`). */
export async function createAttempt(redis: RedisLike, ks: KeySpace, a: AttemptInit): Promise<void> {
  const rec: AttemptRecord = {
    attemptId: a.attemptId,
    nodeId: a.nodeId,
    kind: a.kind ?? 'authoritative',
    epoch: a.epoch ?? 0,
    status: 'queued',
    assumed: {},
    costNanoUsd: 0,
    createdAtMs: Date.now(),
    tries: 0,
  };
  await redis.hset(runKeys(ks, a.tenant, a.runId).attempts, a.attemptId, JSON.stringify(rec));
}

export async function readRecord(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, attemptId: string): Promise<AttemptRecord> {
  const raw = await redis.hget(runKeys(ks, tenant, runId).attempts, attemptId);
  if (raw === null) throw new Error(`no attempt ${attemptId}`);
  return decodeAttempt(raw, attemptId);
}

/** Sets an attempt's status as the scheduler's cancel does (the hash is the truth). */
export async function setStatus(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, attemptId: string, status: AttemptRecord['status']): Promise<void> {
  const rec = await readRecord(redis, ks, tenant, runId, attemptId);
  await redis.hset(runKeys(ks, tenant, runId).attempts, attemptId, JSON.stringify({ ...rec, status }));
}

export function llmJob(a: AttemptInit & { prompt?: string; output?: string; maxTokens?: number; ttftMs?: number; tokensPerSec?: number; streamPartials?: boolean; workflow?: string }): OpJob {
  return {
    v: 1,
    tenant: a.tenant,
    runId: a.runId,
    workflow: a.workflow ?? 'wf',
    nodeId: a.nodeId,
    attemptId: a.attemptId,
    epoch: a.epoch ?? 0,
    kind: a.kind ?? 'authoritative',
    op: {
      kind: 'llm',
      provider: 'simulated',
      model: 'gpt-4o-mini',
      system: 'You are terse.',
      prompt: a.prompt ?? 'Classify this ticket: my invoice is wrong.',
      maxTokens: a.maxTokens ?? 64,
      seed: `${a.runId}/${a.nodeId}`,
      simulate: {
        ...(a.output !== undefined ? { output: a.output } : {}),
        ...(a.ttftMs !== undefined ? { ttftMs: a.ttftMs } : {}),
        ...(a.tokensPerSec !== undefined ? { tokensPerSec: a.tokensPerSec } : {}),
      },
    },
    assumed: {},
    streamPartials: a.streamPartials ?? false,
    enqueuedAtMs: Date.now(),
  };
}

export function toolJob(a: AttemptInit & { tool: string; args: Record<string, unknown>; effects: OpJob['op'] extends infer O ? (O extends { kind: 'tool'; effects: infer E } ? E : never) : never; priceUsd?: number }): OpJob {
  return {
    v: 1,
    tenant: a.tenant,
    runId: a.runId,
    workflow: 'wf',
    nodeId: a.nodeId,
    attemptId: a.attemptId,
    epoch: a.epoch ?? 0,
    kind: a.kind ?? 'authoritative',
    op: { kind: 'tool', tool: a.tool, args: a.args, effects: a.effects, priceUsd: a.priceUsd ?? 0 },
    assumed: {},
    streamPartials: false,
    enqueuedAtMs: Date.now(),
  };
}

/** The ops and spec queues of a key space, with the scheduler's prefix, and its advance stream. */
export function opQueues(redis: RedisLike, ks: KeySpace): { ops: Queue; spec: Queue; advance: AdvanceStream; close(): Promise<void> } {
  const opts = { connection: redis, prefix: queuePrefix(ks) };
  const ops = new Queue(QUEUES.ops, opts);
  const spec = new Queue(QUEUES.spec, opts);
  const advance = new AdvanceStream(redis, ks);
  return {
    ops,
    spec,
    advance,
    close: async () => {
      await Promise.all([ops.close(), spec.close()]);
    },
  };
}

/** Enqueues like the scheduler: authoritative on `ops`, speculative on `spec` with a priority. */
export async function enqueue(queues: { ops: Queue; spec: Queue }, job: OpJob | Record<string, unknown>, opts: { jobId: string; attempts?: number; priority?: number; keepCompleted?: boolean }): Promise<void> {
  const speculative = (job as { kind?: string }).kind === 'speculative';
  const q = speculative ? queues.spec : queues.ops;
  await q.add('op', job, {
    jobId: opts.jobId,
    // The worker deletes a completed job unless the job says otherwise (issue 13 item 3).
    ...(opts.keepCompleted === true ? { removeOnComplete: false } : {}),
    attempts: opts.attempts ?? 3,
    backoff: { type: 'exponential', delay: 100 },
    ...(speculative ? { priority: opts.priority ?? 10 } : {}),
  });
}

/** Creates the attempt record and enqueues its job (the scheduler's order). */
export async function submit(redis: RedisLike, ks: KeySpace, queues: { ops: Queue; spec: Queue }, job: OpJob, opts: { attempts?: number; keepCompleted?: boolean } = {}): Promise<void> {
  await createAttempt(redis, ks, job);
  await enqueue(queues, job, { jobId: `${job.runId}-${job.attemptId}`, ...opts });
}

export interface WorkerOptions {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly env?: Record<string, string>;
  readonly name?: string;
}

/** Starts the real worker process and waits for its `worker ready` line. */
export async function startWorker(o: WorkerOptions): Promise<ServiceProcess> {
  const proc = startProcess(o.name ?? 'worker', WORKER_MAIN, [], {
    REDIS_URL: o.redisUrl,
    GAMBIT_PREFIX: o.prefix,
    GAMBIT_SIM_TIME_SCALE: '0.05',
    WORKER_CONCURRENCY: '2',
    WORKER_SPEC_CONCURRENCY: '1',
    WORKER_LOCK_DURATION_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '500',
    WORKER_STATUS_CHECK_MS: '200',
    LOG_LEVEL: 'info',
    ...o.env,
  });
  try {
    await proc.waitForLine((l) => l.includes('"msg":"worker ready"'), 30_000);
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return proc;
}

/** Polls `read` until `done` holds (never busy-loops: 25 ms between reads). */
export async function waitFor<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** All events on the advance stream (no scheduler consumes them in these tests), oldest first. */
export async function advanceEvents(advance: AdvanceStream): Promise<Array<{ id: string; data: Record<string, unknown> }>> {
  return (await advance.backlog()).map((e) => ({ id: e.id, data: e.data as Record<string, unknown> }));
}

/** Per-test Redis client, key prefix, queues and worker processes, all closed after each test. */
export interface WorkerFixture {
  readonly redisUrl: string;
  readonly redis: Redis;
  readonly prefix: string;
  readonly ks: KeySpace;
  readonly queues: ReturnType<typeof opQueues>;
  readonly procs: ServiceProcess[];
}

/** Registers beforeEach/afterEach in the calling describe block; read the fields inside tests. */
export function useWorkerFixture(label: string): WorkerFixture {
  const redisUrl = inject('redisUrl');
  const procs: ServiceProcess[] = [];
  let current: { redis: Redis; prefix: string; queues: ReturnType<typeof opQueues> } | undefined;
  const get = () => {
    if (current === undefined) throw new Error('worker fixture used outside a test');
    return current;
  };
  beforeEach(() => {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const prefix = uniquePrefix(label);
    current = { redis, prefix, queues: opQueues(redis, { prefix }) };
  });
  afterEach(async () => {
    const c = get();
    await Promise.all(procs.splice(0).map((p) => p.stop(5_000)));
    await c.queues.close();
    await c.redis.quit();
    current = undefined;
  });
  return {
    redisUrl,
    procs,
    get redis() {
      return get().redis;
    },
    get prefix() {
      return get().prefix;
    },
    get ks() {
      return { prefix: get().prefix };
    },
    get queues() {
      return get().queues;
    },
  };
}

/**
 * A connection to the test Redis through a TCP proxy that can drop a reply and cut the connection
 * (test/estimator/tcp-proxy.ts `dropReplyAfter`), with the worker's options (services/worker/src/
 * main.ts: ioredis's defaults for re-sending a call whose reply was lost), beside a direct one.
 */
export interface ResendLink {
  readonly direct: Redis;
  readonly viaProxy: Redis;
  readonly proxy: TcpProxy;
  close(): Promise<void>;
}

export async function startResendLink(): Promise<ResendLink> {
  const url = new URL(inject('redisUrl'));
  const direct = new Redis(inject('redisUrl'));
  const proxy = await startTcpProxy(url.hostname, Number(url.port));
  const viaProxy = new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy: () => 20 });
  await viaProxy.ping();
  return {
    direct,
    viaProxy,
    proxy,
    async close() {
      viaProxy.disconnect();
      await direct.quit();
      await proxy.close();
    },
  };
}
