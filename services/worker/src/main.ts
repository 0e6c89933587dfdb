/**
 * Composition root of the worker service (STYLE.md 1, 9): reads the env once, builds the Redis
 * connections, the price table, the provider and tool registries, the cancel watcher and two
 * BullMQ workers: `ops` (authoritative, WORKER_CONCURRENCY slots) and `spec` (speculative,
 * WORKER_SPEC_CONCURRENCY slots of their own, so speculation never takes an authoritative slot:
 * M10). SIGTERM/SIGINT are handled here and only here. With QUEUE_SHARDS > 1 (issue 13 item 4)
 * there is one `ops` and one `spec` BullMQ worker per queue shard, and the lane's slots are a
 * cap of this process over all of them (LaneGate).
 */
import { createLogger, createPriceTable, type Logger, systemClock } from '@gambit/shared';
import {
  ATTEMPT_SCRIPT_FILES,
  checkQueueShards,
  defineAttemptScripts,
  FAIR_BEAT_MS,
  FAIR_SCRIPT_FILES,
  FairDispatcher,
  type FairLane,
  type FairShard,
  QUEUES,
  queueShardPrefixes,
  redisConnectionOptions,
  waitForRedis,
} from '@gambit/shared/redis';
import { initTelemetry, Readiness, redisCheck, runningCheck, scriptsCheck, startOpsServer } from '@gambit/shared/telemetry';
import { DelayedError, type Job, type Processor, Queue, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { CancelWatcher } from './cancellation.js';
import { loadEnv, type WorkerEnv } from './env.js';
import { AdvancePublisher } from './events.js';
import { createProcessor } from './processor.js';
import { loadProviderRegistry } from './providers/load.js';
import type { ProviderConfig } from './providers/registry.js';
import { OutboundGuard } from './outbound.js';
import { createToolRegistry } from './tools/index.js';

function connect(env: WorkerEnv): Redis | Cluster {
  // BullMQ workers block on their connection: ioredis must never give up on a command.
  const common = redisConnectionOptions(env, { maxRetriesPerRequest: null, enableReadyCheck: true });
  if (env.REDIS_CLUSTER_NODES !== undefined) return new Cluster(env.REDIS_CLUSTER_NODES, { redisOptions: common });
  return new Redis(env.REDIS_URL, common);
}

/**
 * Issue 13 item 4: a lane's slots as a cap of the whole process. With queue shards the worker
 * runs one BullMQ worker per shard for the lane, each allowed the lane's slots (work may sit in
 * any shard); the gate lets only `slots` jobs run at once over all of them, the others wait
 * (taken by BullMQ, their locks renewed) in arrival order. With one shard it is not used.
 */
class LaneGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly slots: number) {}

  async acquire(): Promise<void> {
    if (this.running < this.slots) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.running--;
  }
}

function providerConfig(env: WorkerEnv): ProviderConfig {
  const openaiCompatible: Record<string, { baseUrl: string; apiKey?: string; timeoutMs?: number }> = { ...env.GAMBIT_OPENAI_COMPATIBLE };
  if (env.OPENAI_API_KEY !== undefined)
    openaiCompatible.openai = { baseUrl: env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', apiKey: env.OPENAI_API_KEY };
  return {
    openaiCompatible,
    ...(env.ANTHROPIC_API_KEY !== undefined
      ? { anthropic: { apiKey: env.ANTHROPIC_API_KEY, ...(env.ANTHROPIC_BASE_URL !== undefined ? { baseUrl: env.ANTHROPIC_BASE_URL } : {}) } }
      : {}),
    ...(env.GAMBIT_LOCAL_MODEL_PATH !== undefined ? { local: { modelPath: env.GAMBIT_LOCAL_MODEL_PATH } } : {}),
    simulated: { timeScale: env.GAMBIT_SIM_TIME_SCALE, cachedInputShare: env.GAMBIT_SIM_CACHED_INPUT_SHARE },
    simulatedFallback: env.GAMBIT_SIMULATED_FALLBACK,
  };
}

async function main(): Promise<void> {
  let env: WorkerEnv;
  try {
    env = loadEnv();
  } catch (err) {
    process.stderr.write(`${JSON.stringify({ level: 50, msg: 'invalid worker configuration', error: String(err) })}\n`);
    process.exit(1);
  }
  const logger: Logger = createLogger({ name: 'worker', level: env.LOG_LEVEL }).child({ workerId: env.WORKER_ID });
  const ks = { prefix: env.GAMBIT_PREFIX };
  const telemetry = initTelemetry(env.telemetry, { instanceId: env.WORKER_ID });
  const redis = connect(env);
  const subscriber = connect(env);
  redis.on('error', (err: unknown) => logger.warn({ err }, 'redis error'));
  subscriber.on('error', (err: unknown) => logger.warn({ err }, 'redis subscriber error'));
  defineAttemptScripts(redis);

  const prices = createPriceTable(env.GAMBIT_PRICES ?? {});
  const providers = await loadProviderRegistry(providerConfig(env));
  // Issue 10 item 8: the simulated fallback is the operator's visible choice, never silent.
  const standIns = providers.simulatedStandIns();
  if (standIns.length > 0)
    logger.warn(
      { simulatedFallback: standIns },
      `GAMBIT_SIMULATED_FALLBACK is on: nodes naming ${standIns.join(', ')} run on the simulated provider (reported as provider "simulated")`,
    );
  const outbound = new OutboundGuard({
    trustedOrigins: env.OUTBOUND_TRUSTED_ORIGINS ?? new Set(),
    maxBodyBytes: env.OUTBOUND_MAX_BODY_BYTES,
    maxRedirects: env.OUTBOUND_MAX_REDIRECTS,
    timeoutMs: env.OUTBOUND_TIMEOUT_MS,
  });
  const tools = await createToolRegistry({ kvLatencyMs: env.WORKER_KV_LATENCY_MS, modulePath: env.GAMBIT_TOOLS_MODULE, outbound, maxSleepMs: env.WORKER_MAX_SLEEP_MS });
  const events = new AdvancePublisher(redis, ks, env.QUEUE_SHARDS);
  const cancels = new CancelWatcher(redis, subscriber, ks, env.WORKER_STATUS_CHECK_MS, logger);

  // The ops listener starts before anything waits on Redis (issue 11): /healthz answers 200 and
  // /readyz 503 while Redis is unreachable at start-up; the consumers are set once they exist.
  let stopping: Promise<void> | undefined;
  let ops: Worker[] | undefined;
  let spec: Worker[] | undefined;
  const readiness = new Readiness([
    redisCheck('redis', redis),
    redisCheck('redis_subscriber', subscriber),
    scriptsCheck(redis, [...ATTEMPT_SCRIPT_FILES, ...FAIR_SCRIPT_FILES]),
    runningCheck('ops_consumer', () => stopping === undefined && ops !== undefined && ops.every((w) => w.isRunning())),
    ...(env.WORKER_SPEC_CONCURRENCY > 0 ? [runningCheck('spec_consumer', () => stopping === undefined && spec !== undefined && spec.every((w) => w.isRunning()))] : []),
  ]);
  telemetry.meter
    .createObservableGauge('gambit.worker.running', { description: 'Attempts this worker is running now (under a cancellable lease)' })
    .addCallback((r) => r.observe(cancels.running));
  const opsServer = await startOpsServer({ host: env.OPS_HOST, port: env.OPS_PORT, prometheus: telemetry.prometheus, readiness, log: logger, identity: { workerId: env.WORKER_ID } });
  await waitForRedis(redis, logger, { name: 'redis' });
  await waitForRedis(subscriber, logger, { name: 'redis_subscriber' });
  await cancels.start();

  const processor = createProcessor({
    workerId: env.WORKER_ID,
    redis,
    ks,
    providers,
    prices,
    tools,
    events,
    cancels,
    partials: { minIntervalMs: env.WORKER_PARTIAL_MIN_INTERVAL_MS, minDeltas: env.WORKER_PARTIAL_MIN_DELTAS },
    timeScale: env.GAMBIT_SIM_TIME_SCALE,
    maxTries: env.WORKER_MAX_TRIES,
    maxOpTimeoutMs: env.WORKER_MAX_OP_TIMEOUT_MS,
    clock: systemClock,
    // With no exporter a span is built and dropped (attributes, ids, context extraction on every
    // job): the worker's spans are leaves that nothing else reads, so none are made.
    ...(telemetry.tracing ? { tracer: telemetry.tracer } : {}),
    metrics: telemetry.metrics,
    nowMs: () => systemClock.nowMs(),
    logger,
  });
  // Issue 13 item 4: every scheduler and worker of the deployment uses the same queue shards.
  await checkQueueShards(redis, ks, env.QUEUE_SHARDS);
  const prefixes = queueShardPrefixes(ks, env.QUEUE_SHARDS);
  const workerOpts = {
    connection: redis,
    lockDuration: env.WORKER_LOCK_DURATION_MS,
    stalledInterval: env.WORKER_STALLED_INTERVAL_MS,
    maxStalledCount: 2 * env.WORKER_MAX_TRIES,
    name: env.WORKER_ID,
    // Issue 13 item 3: a completed job is deleted (its attempt record keeps what happened). The
    // scheduler leaves this option out of the job (services/scheduler/src/engine/outbox.ts); a
    // job that says otherwise (an older scheduler's `removeOnComplete: true`, a test's `false`) wins.
    removeOnComplete: { count: 0 },
  };
  // One shard: the BullMQ worker's concurrency is the lane's slots, as before. More: each shard's
  // worker may take the lane's slots, and the gate caps the process at them.
  const gated = (slotCount: number): Processor => {
    if (prefixes.length === 1) return processor;
    const gate = new LaneGate(slotCount);
    return async (job, token, signal) => {
      await gate.acquire();
      try {
        // Stopping: a job that waited for the gate is handed back untouched, for another worker.
        if (stopping !== undefined && token !== undefined) {
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
        }
        return await processor(job, token, signal);
      } finally {
        gate.release();
      }
    };
  };
  const opsProcessor = gated(env.WORKER_CONCURRENCY);
  const specProcessor = gated(env.WORKER_SPEC_CONCURRENCY);
  const opsWorkers = prefixes.map((prefix) => new Worker(QUEUES.ops, opsProcessor, { ...workerOpts, prefix, concurrency: env.WORKER_CONCURRENCY }));
  const specWorkers =
    env.WORKER_SPEC_CONCURRENCY > 0 ? prefixes.map((prefix) => new Worker(QUEUES.spec, specProcessor, { ...workerOpts, prefix, concurrency: env.WORKER_SPEC_CONCURRENCY })) : [];
  const allWorkers = [...opsWorkers, ...specWorkers];
  ops = opsWorkers;
  spec = specWorkers;
  // Issue 10 item 4, fair dispatch (shared/redis/fair.ts): this worker's slots are registered
  // (refreshed every FAIR_BEAT_MS, in every shard), and every job it finishes frees its slot and
  // pumps the lane of its shard, so the next tenant in turn gets the slot at once.
  // The queues' meta is written by every Queue: the same event stream cap as the scheduler's.
  const streams = { events: { maxLen: env.QUEUE_EVENTS_MAX_LEN } };
  const fairShards: FairShard[] = prefixes.map((prefix) => ({
    prefix,
    ops: new Queue(QUEUES.ops, { connection: redis, prefix, streams }),
    spec: new Queue(QUEUES.spec, { connection: redis, prefix, streams }),
  }));
  const fair = new FairDispatcher(redis, ks, fairShards, logger.child({ component: 'fair' }), { reservedSlots: env.FAIR_RESERVED_SLOTS });
  const slots = { ops: env.WORKER_CONCURRENCY, spec: env.WORKER_SPEC_CONCURRENCY };
  const freed = (lane: FairLane, shard: number, job: Job | undefined) => {
    if (job?.id === undefined) return;
    // The release and the pump that fills the freed slot: one script call (issue 13 item 1).
    void fair
      .releaseAndPump(lane, job.id, shard)
      .catch((err: unknown) => logger.warn({ lane, shard, jobId: job.id, err: String(err) }, 'fair dispatch release failed'));
  };
  for (const [lane, workers] of [
    ['ops', opsWorkers],
    ['spec', specWorkers],
  ] as const) {
    workers.forEach((w, shard) => {
      w.on('completed', (job) => freed(lane, shard, job));
      w.on('failed', (job) => freed(lane, shard, job));
      w.on('error', (err) => logger.error({ err, queue: lane, shard }, 'worker error'));
      w.on('failed', (job, err) => logger.warn({ queue: lane, shard, jobId: job?.id, error: err.message, attemptsMade: job?.attemptsMade }, 'job failed'));
    });
  }
  await Promise.all(allWorkers.map((w) => w.waitUntilReady()));
  await fair.beat(env.WORKER_ID, slots);
  const beat = setInterval(() => {
    if (stopping !== undefined) return;
    void fair.beat(env.WORKER_ID, slots).catch((err: unknown) => logger.warn({ err: String(err) }, 'fair dispatch beat failed'));
  }, FAIR_BEAT_MS);
  beat.unref();
  await fair.pumpAll();

  const shutdown = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ signal, running: cancels.running }, 'worker stopping');
      // No new work is dispatched for this worker's slots.
      clearInterval(beat);
      await fair.leave(env.WORKER_ID).catch((err: unknown) => logger.warn({ err: String(err) }, 'fair dispatch leave failed'));
      // Stop intake on both queues at once; speculative work is cut short (its partial cost is
      // billed and the job handed back), authoritative work may finish within the deadline.
      const specClosed = Promise.all(specWorkers.map((w) => w.close()));
      const opsClosed = Promise.all(opsWorkers.map((w) => w.close()));
      const abortedSpec = cancels.abortAll((r) => r.kind === 'speculative');
      await specClosed;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), env.WORKER_DRAIN_TIMEOUT_MS);
      });
      const drained = await Promise.race([opsClosed.then(() => 'drained' as const), deadline]);
      clearTimeout(timer);
      let abortedOps = 0;
      if (drained === 'timeout') {
        abortedOps = cancels.abortAll();
        await opsClosed;
      }
      await cancels.close();
      // Claimed jobs added to BullMQ whose confirmation waits for a claim (issue 13 item 1).
      await fair.flushConfirmed().catch((err: unknown) => logger.warn({ err: String(err) }, 'fair dispatch confirmations failed'));
      await Promise.all(fairShards.flatMap((s) => [s.ops.close(), s.spec.close()]));
      await outbound.close();
      await opsServer.close();
      await events.close();
      await providers.close();
      await telemetry.shutdown();
      await Promise.allSettled([subscriber.quit(), redis.quit()]);
      logger.info({ abortedSpec, abortedOps, drained }, 'worker stopped');
      process.exit(0);
    })();
    return stopping;
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  logger.info(
    {
      prefix: ks.prefix,
      concurrency: env.WORKER_CONCURRENCY,
      queueShards: prefixes.length,
      specConcurrency: env.WORKER_SPEC_CONCURRENCY,
      providers: providers.names(),
      simulatedFallback: standIns,
      tools: tools.names(),
      lockDurationMs: env.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
      maxOpTimeoutMs: env.WORKER_MAX_OP_TIMEOUT_MS,
    },
    'worker ready',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${JSON.stringify({ level: 60, msg: 'worker crashed', error: err instanceof Error ? err.stack : String(err) })}\n`);
  process.exit(1);
});
