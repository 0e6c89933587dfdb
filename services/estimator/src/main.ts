/**
 * Composition root of the estimator (ARCHITECTURE.md): parses the environment, wires the
 * consumer, the outcome processor and the periodic duties, and handles SIGTERM/SIGINT in one
 * place: stop intake, drain the batch in hand under a deadline, remove the heartbeat, close
 * the connections, exit.
 */
import { createLogger, systemClock } from '@gambit/shared';
import { ESTIMATOR_SCRIPTS } from '@gambit/shared';
import { defineScripts, outcomeStreams, redisConnectionOptions, waitForRedis } from '@gambit/shared/redis';
import { initTelemetry, startOpsServer } from '@gambit/shared/telemetry';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { assertNoUnreadShards, StreamConsumer } from './consumer.js';
import { DedupeHorizon } from './dedupe-horizon.js';
import { type EstimatorEnv, loadEnv } from './env.js';
import { Duties } from './heartbeat.js';
import { estimatorReadiness, observeEstimator } from './observe.js';
import { OutcomeProcessor } from './processor.js';
import { TenantConfigs } from './tenant-config.js';

function connect(env: EstimatorEnv, opts: RedisOptions): Redis | Cluster {
  const full = redisConnectionOptions(env, opts);
  if (env.REDIS_CLUSTER_NODES !== undefined) {
    return new Cluster(env.REDIS_CLUSTER_NODES, { redisOptions: full, enableAutoPipelining: opts.enableAutoPipelining === true });
  }
  return new Redis(env.REDIS_URL, full);
}

async function main(): Promise<void> {
  const env = loadEnv();
  const log = createLogger({ name: 'estimator', level: env.LOG_LEVEL }).child({ estimatorId: env.ESTIMATOR_ID });
  const ks = { prefix: env.GAMBIT_PREFIX };
  const telemetry = initTelemetry(env.telemetry, { instanceId: env.ESTIMATOR_ID });
  // Auto-pipelining: a batch's per-class scripts, sent in one tick, leave in one write (per node).
  const redis = connect(env, { maxRetriesPerRequest: 2, enableAutoPipelining: true });
  // Issue 13 item 4: the outcomes in GAMBIT_OUTCOME_SHARDS streams under their own hash tags;
  // each is read by its own consumer.
  const streams = outcomeStreams(ks, env.GAMBIT_OUTCOME_SHARDS);
  // XREADGROUP BLOCK holds its connection: a client of its own per stream, so commands never wait behind it.
  const blocking = streams.map(() => connect(env, { maxRetriesPerRequest: null }));
  for (const r of [redis, ...blocking]) r.on('error', (err) => log.debug({ err: String(err) }, 'redis connection error'));
  defineScripts(redis, ESTIMATOR_SCRIPTS);

  const tenants = new TenantConfigs(redis, ks, systemClock, log, {
    ...(env.ESTIMATOR_CALIBRATION === undefined ? {} : { overrides: env.ESTIMATOR_CALIBRATION }),
    defaultLambdaUsdPerSec: env.ESTIMATOR_DEFAULT_LAMBDA_USD_PER_SEC,
    cacheMs: env.ESTIMATOR_TENANT_CACHE_MS,
  });
  // Issue 13 item 5: the outcome-id dedupe forgets ids a window before the streams' delivery cut.
  const horizon = new DedupeHorizon(env.ESTIMATOR_DEDUPE_WINDOW_MS);
  const processor = new OutcomeProcessor(redis, ks, systemClock, log, tenants, {
    estimatorId: env.ESTIMATOR_ID,
    dedupe: horizon,
    autoGlobal: { classCount: env.ESTIMATOR_AUTO_GLOBAL_CLASSES, windowMs: env.ESTIMATOR_AUTO_GLOBAL_WINDOW_MS },
    fallbackPrior: { a: 1, b: 1 },
    metrics: telemetry.metrics,
  });
  const consumers = streams.map(
    (stream, i) =>
      new StreamConsumer(redis, blocking[i] as Redis | Cluster, processor, log, {
        consumer: env.ESTIMATOR_ID,
        stream,
        batch: env.ESTIMATOR_BATCH,
        blockMs: env.ESTIMATOR_BLOCK_MS,
        claimIdleMs: env.ESTIMATOR_CLAIM_IDLE_MS,
        claimIntervalMs: env.ESTIMATOR_CLAIM_INTERVAL_MS,
      }),
  );
  const duties = new Duties(redis, ks, systemClock, log, {
    estimatorId: env.ESTIMATOR_ID,
    everyMs: env.ESTIMATOR_HEARTBEAT_MS,
    trimEveryMs: env.ESTIMATOR_TRIM_INTERVAL_MS,
    streams,
    horizon,
  });

  observeEstimator(telemetry.meter, { redis, ks, streams, counters: processor.counters, maxClasses: env.GAMBIT_METRICS_MAX_CLASSES }, log);
  const readiness = estimatorReadiness(redis, blocking, () => consumers.every((c) => c.running()));
  const opsServer = await startOpsServer({ host: env.OPS_HOST, port: env.OPS_PORT, prometheus: telemetry.prometheus, readiness, log, identity: { estimatorId: env.ESTIMATOR_ID } });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      log.info({ signal }, 'estimator stopping');
      await Promise.all(consumers.map((c) => c.stop(env.ESTIMATOR_DRAIN_TIMEOUT_MS)));
      await duties.stop();
      await opsServer.close();
      await telemetry.shutdown();
      for (const b of blocking) b.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      log.info({ ...processor.counters }, 'estimator stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  // Issue 11: a Redis that is not there yet is waited for (bounded, one log line per attempt);
  // meanwhile the ops listener answers /healthz 200 and /readyz 503.
  await waitForRedis(redis, log, { name: 'redis' });
  for (const b of blocking) await waitForRedis(b, log, { name: 'redis_blocking' });
  await assertNoUnreadShards(redis, ks, streams.length);
  for (const c of consumers) await c.start();
  await duties.start();
  log.info({ prefix: ks.prefix, outcomeShards: streams.length, defaults: tenants.defaults() }, 'estimator ready');
}

main().catch((err: unknown) => {
  process.stderr.write(`estimator failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
