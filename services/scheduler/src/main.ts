/**
 * The scheduler's composition root: reads the environment once, wires Redis (server or
 * Cluster), the BullMQ queues, the control plane, the run engine, the advance consumer, the
 * recovery sweep and the HTTP API, and handles SIGTERM in one place: stop HTTP intake, stop the
 * advance consumer (its in-flight events finish; the rest wait in the stream for other
 * schedulers), cancel nothing authoritative, close connections, exit 0.
 */
import { hostname } from 'node:os';
import {
  ControlPlane,
  createLogger,
  createPriceTable,
  type Logger,
  systemClock,
} from '@gambit/shared';
import {
  AdvanceStream,
  checkQueueShards,
  defineAdmissionScripts,
  defineRunScripts,
  FairDispatcher,
  type FairShard,
  type KeySpace,
  QUEUES,
  queueShardPrefixes,
  type RedisLike,
  redisConnectionOptions,
  waitForRedis,
} from '@gambit/shared/redis';
import { healthAnswer, initTelemetry, startOpsServer } from '@gambit/shared/telemetry';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { AdvanceConsumer } from './advance.js';
import { ControlPlaneAdapter } from './engine/control.js';
import { RunEngine } from './engine/engine.js';
import { OperationEstimateCache } from './engine/op-estimates.js';
import type { RunEndEvent } from './engine/tracing.js';
import { Outbox } from './engine/outbox.js';
import { AttentionService } from './attention.js';
import { clusterNodes, knownTools, loadEnv, type SchedulerEnv } from './env.js';
import { KeyStore } from './http/auth.js';
import { buildServer, type Operator } from './http/server.js';
import { instrumentHttp } from './http/tracing.js';
import { cancelSpeculationsInScope } from './kill.js';
import { LimitStore, SpendLedger } from './limits.js';
import { TenantGate } from './tenant-gate.js';
import { OperatorService } from './operator.js';
import { observeScheduler, schedulerReadiness, shardedQueue, streamAsQueue } from './observe.js';
import { PredictorSet } from './predictors/index.js';
import { RecoverySweeper } from './recovery.js';
import { RetentionPolicy } from './retention.js';
import { RunService } from './runs.js';
import { TenantStore } from './tenants.js';
import { WebhookService } from './webhooks.js';
import { OutboundGuard } from '@gambit/shared/outbound';
import { WorkflowRegistry } from './workflows.js';

/** How often a run's event stream re-reads the run (GET /v1/runs/:tenant/:runId/events). */
const EVENT_POLL_MS = 150;

/**
 * Issue 13 item 1 / issue 10 item 4: the engine's and the API's connections pipeline
 * automatically: the commands and scripts issued in one tick of the event loop go out in one
 * write (one syscall, and one wake-up of Redis) instead of one each. Under a burst of submits the
 * per-command writes were the scheduler's largest CPU cost, and every other tenant's request
 * waited behind them. Order on a connection is unchanged. BullMQ's connection keeps its own
 * behaviour (it issues blocking commands).
 */
function connect(env: SchedulerEnv, forBull: boolean): RedisLike {
  const nodes = clusterNodes(env);
  const opts = redisConnectionOptions(env, forBull ? { maxRetriesPerRequest: null } : { enableAutoPipelining: true });
  if (nodes !== undefined) return new Cluster(nodes, { redisOptions: opts, enableReadyCheck: true, enableAutoPipelining: !forBull });
  return new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', opts);
}

/**
 * Issue 11 D3: the HTTP API's own connection fails fast while Redis is unreachable (no offline
 * queue: a command is refused at once; a command timeout), and never re-sends a command after a
 * reconnect, so a request answered with 503 is not acted on later.
 */
function connectApi(env: SchedulerEnv): RedisLike {
  const nodes = clusterNodes(env);
  const opts = redisConnectionOptions(env, {
    enableOfflineQueue: false,
    commandTimeout: env.API_REDIS_COMMAND_TIMEOUT_MS,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: true,
  });
  if (nodes !== undefined) return new Cluster(nodes, { redisOptions: opts, enableOfflineQueue: false, enableReadyCheck: true, enableAutoPipelining: true });
  return new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', opts);
}

async function whenReady(r: RedisLike): Promise<void> {
  if (r.status === 'ready') return;
  await new Promise<void>((resolve) => r.once('ready', () => resolve()));
}

async function main(): Promise<void> {
  const env = loadEnv();
  const schedulerId = env.SCHEDULER_ID ?? `${hostname()}-${process.pid}`;
  const log: Logger = createLogger({ name: 'scheduler', level: env.LOG_LEVEL }).child({ schedulerId });
  const ks: KeySpace = { prefix: env.GAMBIT_PREFIX };
  const clock = systemClock;
  const telemetry = initTelemetry(env.telemetry, { instanceId: schedulerId });
  const { tracer, metrics } = telemetry;
  const cmd = connect(env, false);
  const bull = connect(env, true);
  const api = connectApi(env);
  api.on('error', (err: Error) => log.warn({ err: String(err) }, 'API Redis connection error'));
  defineRunScripts(cmd);
  defineRunScripts(api);
  const priceTable = env.GAMBIT_PRICES === undefined ? createPriceTable() : createPriceTable(env.GAMBIT_PRICES);

  // Issue 13 item 3: BullMQ's event stream per queue is capped (nothing in Gambit reads it).
  const streams = { events: { maxLen: env.QUEUE_EVENTS_MAX_LEN } };
  // Issue 13 item 4: the `ops` and `spec` queues of every queue shard (one: `{P:q}` as before).
  const shards: FairShard[] = queueShardPrefixes(ks, env.QUEUE_SHARDS).map((prefix) => ({
    prefix,
    ops: new Queue(QUEUES.ops, { connection: bull, prefix, streams }),
    spec: new Queue(QUEUES.spec, { connection: bull, prefix, streams }),
  }));
  const advance = new AdvanceStream(cmd, ks, env.QUEUE_SHARDS);
  // Issue 11: the ops listener starts before anything waits on Redis, so /healthz answers 200
  // and /readyz 503 while Redis is unreachable at start-up; then each connection is waited for
  // (bounded, one log line per attempt).
  let consumer: AdvanceConsumer | undefined;
  const readiness = schedulerReadiness(cmd, bull, () => consumer?.running() === true);
  const opsServer = await startOpsServer({ host: env.OPS_HOST, port: env.OPS_PORT, prometheus: telemetry.prometheus, readiness, log, identity: { schedulerId } });
  await waitForRedis(cmd, log, { name: 'redis' });
  await waitForRedis(bull, log, { name: 'redis_queues' });
  await waitForRedis(api, log, { name: 'redis_api' });
  await checkQueueShards(cmd, ks, env.QUEUE_SHARDS);
  // The control plane takes a plain client or options; on a Cluster it gets the cluster client.
  const cp = new ControlPlane(cmd, ks, clock, log.child({ component: 'control' }), { outcomeShards: env.GAMBIT_OUTCOME_SHARDS });
  await cp.ready();
  const control = new ControlPlaneAdapter(cp, env.REQUIRE_ESTIMATOR_HEARTBEAT);
  const tenants = new TenantStore(cmd, ks, {
    alpha: env.DEFAULT_ALPHA,
    lambdaUsdPerSec: env.DEFAULT_LAMBDA_USD_PER_SEC,
    initialStage: env.DEFAULT_INITIAL_STAGE,
  });
  // The HTTP API's stores use the fail-fast connection (D3); the engine keeps its own.
  const apiTenants = new TenantStore(api, ks, {
    alpha: env.DEFAULT_ALPHA,
    lambdaUsdPerSec: env.DEFAULT_LAMBDA_USD_PER_SEC,
    initialStage: env.DEFAULT_INITIAL_STAGE,
  });
  const workflows = new WorkflowRegistry(api, ks);
  defineAdmissionScripts(api);
  const limitDefaults = {
    maxPromptBytes: env.TENANT_MAX_PROMPT_BYTES,
    maxTokens: env.TENANT_MAX_TOKENS,
    maxNodes: env.TENANT_MAX_NODES,
    maxEdges: env.TENANT_MAX_EDGES,
    maxFanOut: env.TENANT_MAX_FAN_OUT,
    ratePerSec: env.TENANT_RATE_PER_SEC,
    burst: env.TENANT_BURST,
    maxInFlightRuns: env.TENANT_MAX_IN_FLIGHT_RUNS,
    opTimeoutMs: env.TENANT_OP_TIMEOUT_MS,
    maxRetentionSec: env.RUN_RETENTION_SEC,
    maxRunsKept: env.TENANT_MAX_RUNS_KEPT,
  };
  const limits = new LimitStore(api, ks, limitDefaults, undefined, env.QUEUE_SHARDS);
  // Retention of ended runs (issue 10 item 9, issue 13 item 3): the engine's own connection.
  const retention = new RetentionPolicy(cmd, ks, tenants, new LimitStore(cmd, ks, limitDefaults, undefined, env.QUEUE_SHARDS));
  const apiRetention = new RetentionPolicy(api, ks, apiTenants, limits);
  // Issue 10 item 3: the spend cap's ledger (booked per UTC day/month, held by running work),
  // written at every launch and when an ended run settles (engine/spend.ts), read by the API.
  const apiSpend = new SpendLedger(api, ks);
  // Issue 10 item 4: jobs wait on per-tenant ready lists and go to the BullMQ queues only while
  // the workers have free slots, tenants served by weighted deficit round-robin (docs/runtime.md).
  // On the queues' connection, not the engine's: a tenant's enqueue and dispatch do not wait
  // behind the commands another tenant's runs queue on the engine connection.
  const fair = new FairDispatcher(bull, ks, shards, log.child({ component: 'fair' }), { headroom: env.FAIR_QUEUE_HEADROOM, reservedSlots: env.FAIR_RESERVED_SLOTS });
  const outbox = new Outbox(cmd, ks, fair, env.OPS_JOB_ATTEMPTS, log);
  // Workers pump when they free a slot; this timer is the backstop (a missed trigger, new workers).
  const fairPump = setInterval(() => void fair.pumpAll(), env.FAIR_PUMP_MS);
  fairPump.unref();
  // Run-end webhooks: queued when a run ends here, delivered by any scheduler's worker through
  // the outbound guard (issue 10 item 6).
  const outbound = new OutboundGuard({ trustedOrigins: env.OUTBOUND_TRUSTED_ORIGINS ?? new Set(), maxBodyBytes: env.OUTBOUND_MAX_BODY_BYTES, maxRedirects: 0, timeoutMs: env.WEBHOOK_TIMEOUT_MS });
  const webhooks = new WebhookService(cmd, bull, ks, clock, log.child({ component: 'webhooks' }), {
    attempts: env.WEBHOOK_ATTEMPTS,
    backoffMs: env.WEBHOOK_BACKOFF_MS,
    timeoutMs: env.WEBHOOK_TIMEOUT_MS,
    concurrency: env.WEBHOOK_CONCURRENCY,
  }, outbound);
  webhooks.start();
  const deps = {
    onRunEnd: (e: RunEndEvent) => {
      webhooks.runEnded({ tenant: e.tenant, runId: e.runId, status: e.status, endMs: e.endMs }).catch((err: unknown) => log.error({ err: String(err), tenant: e.tenant, runId: e.runId }, 'queueing the run-end webhook failed'));
    },
    ensureRunEndNotice: (e: { tenant: string; runId: string; status: string; endMs: number }) => webhooks.runEnded(e),
    redis: cmd,
    ks,
    outbox,
    fair,
    priceTable,
    predictors: new PredictorSet(),
    control,
    tenants,
    clock,
    log,
    tracer,
    metrics,
    // M4: ΔT uses what workers have learned per operation class (refreshed every 2 s).
    opEstimates: new OperationEstimateCache(cmd, ks, clock),
    retention,
    lostAttemptGraceMs: env.RECOVERY_STALE_MS,
    limits,
  };
  const engine = new RunEngine(deps);
  const tools = knownTools(env);
  const runs = new RunService({
    redis: api,
    ks,
    engine,
    tenants: apiTenants,
    workflows,
    limits,
    spend: apiSpend,
    control,
    priceTable,
    ...(tools === undefined ? {} : { knownTools: tools }),
    clock,
    log,
    tracer,
    metrics,
    retention: apiRetention,
    submitGate: new TenantGate(env.SUBMIT_CONCURRENCY_PER_TENANT),
  });
  control.onKill((scope, id) => {
    void cancelSpeculationsInScope({ redis: cmd, ks, engine, log }, scope, id).catch((err: unknown) =>
      log.warn({ err: String(err), scope, id }, 'cancelling speculations after a kill failed'),
    );
  });
  const advanceConsumer = new AdvanceConsumer(bull, ks, engine, deps, { consumerId: schedulerId, concurrency: env.ADVANCE_CONCURRENCY, claimIdleMs: env.RECOVERY_STALE_MS, shards: env.QUEUE_SHARDS }, log);
  consumer = advanceConsumer;
  await advanceConsumer.waitUntilReady();
  const sweeper = new RecoverySweeper(cmd, ks, outbox, advance, clock, log, { intervalMs: env.RECOVERY_SWEEP_MS, staleMs: env.RECOVERY_STALE_MS, fair });
  sweeper.start();

  const operatorService = new OperatorService({ cp, redis: cmd, ks, nowMs: () => clock.nowMs(), heartbeatRequired: env.REQUIRE_ESTIMATOR_HEARTBEAT });
  const operator: Operator = {
    kill: (b) => operatorService.kill(b, b.owner ?? 'operator'),
    revive: (b) => operatorService.revive(b),
    classInfo: (classId) => operatorService.classInfo(classId),
    // Liveness only (no Redis round trip: it must answer while Redis is down); /readyz checks Redis.
    async health() {
      return { ok: true, status: 'alive', schedulerId, heartbeatFresh: cp.heartbeatFresh() };
    },
  };
  const keys = new KeyStore(api, ks, { adminKey: env.GAMBIT_ADMIN_KEY, hmacSecret: env.GAMBIT_KEY_HMAC_SECRET });
  // Issue 11 D2: nodes whose irreversible tool waits for an operator (operator-only routes).
  const attention = new AttentionService({ redis: cmd, ks, engine, clock, log: log.child({ component: 'attention' }) });
  const app = buildServer({
    runs,
    tenants: apiTenants,
    workflows,
    operator,
    keys,
    limits,
    spend: apiSpend,
    attention,
    platform: { redis: cmd, ks, operator: operatorService, nowMs: () => clock.nowMs(), eventPollMs: EVENT_POLL_MS },
    webhooks,
    consoleQueues: [...shards.flatMap((s) => [s.ops, s.spec]), webhooks.queue],
    priceTable,
    ...(tools === undefined ? {} : { knownTools: tools }),
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    apiDeadlineMs: env.API_DEADLINE_MS,
    log,
    readiness: () => healthAnswer('/readyz', readiness, { schedulerId }),
  });
  instrumentHttp(app, { tracer, meter: telemetry.meter });
  observeScheduler(telemetry.meter, { queues: [shardedQueue(shards.map((s) => s.ops)), shardedQueue(shards.map((s) => s.spec)), streamAsQueue(advance)], control: cp, tenants, seenTenants: () => metrics.tenants(), nowMs: () => clock.nowMs() }, log);
  await whenReady(api);
  await app.listen({ port: env.PORT, host: env.HOST });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : env.PORT;
  log.info({ port, host: env.HOST }, 'scheduler listening');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      log.info({ signal }, 'scheduler stopping');
      const deadline = setTimeout(() => {
        log.error({}, 'shutdown deadline passed: exiting');
        process.exit(1);
      }, env.SHUTDOWN_GRACE_MS);
      deadline.unref();
      // Intake first, then the consumer (in-flight events finish), then the sweep and connections.
      await app.close();
      await advanceConsumer.close();
      await opsServer.close();
      await sweeper.close();
      // The outbox deletions still waiting for a run's next read (issue 13 item 1).
      await outbox.close();
      clearInterval(fairPump);
      await fair.flushConfirmed();
      await webhooks.close();
      await outbound.close();
      await Promise.all(shards.flatMap((s) => [s.ops.close(), s.spec.close()]));
      await cp.close();
      await telemetry.shutdown();
      await Promise.all([cmd.quit().catch(() => undefined), bull.quit().catch(() => undefined), api.quit().catch(() => undefined)]);
      log.info({}, 'scheduler stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`${JSON.stringify({ level: 60, msg: 'scheduler failed to start', err: String(err), stack: (err as Error).stack })}\n`);
  process.exit(1);
});
