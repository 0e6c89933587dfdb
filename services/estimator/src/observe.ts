/**
 * The estimator's gauges and readiness (issue 12 item 1, issue 11 item 4), wired by main.ts:
 * - estimator lag: the outcome stream's length, and the consumer group's `lag` (entries not yet
 *   delivered) and `pending` (delivered, not acknowledged) from XINFO GROUPS;
 * - the calibration census: classes by stage (M9), read from the class hashes;
 * - per-class posterior mean and observation count for at most `maxClasses` classes (those with
 *   the most outcomes): the cardinality bound of per-class series;
 * - kills in force by scope and the kill-switch version (the `kill` hash, the truth);
 * - what this estimator did: entries applied, duplicates, dead letters, alarms, transitions.
 * Every estimator reads the same Redis: aggregate the Redis-derived gauges with `max`.
 */
import { ESTIMATOR_SCRIPTS, type Logger, parseKillHash } from '@gambit/shared';
import { classKeys, controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import { observeGauges, Readiness, redisCheck, runningCheck, scriptsCheck } from '@gambit/shared/telemetry';
import type { Attributes, Meter } from '@opentelemetry/api';
import { CONSUMER_GROUP } from './consumer.js';
import type { ProcessorCounters } from './processor.js';

/** The census reads at most this many classes per collection (larger deployments: a sample). */
export const CENSUS_MAX_CLASSES = 5_000;

type Row = readonly [string, number, Attributes];

/** Summed over the outcome streams (shards, GAMBIT_OUTCOME_SHARDS). */
async function streamRows(redis: RedisLike, streams: readonly string[]): Promise<Row[]> {
  let length = 0;
  let pending = 0;
  let lag: number | undefined = 0;
  let grouped = false;
  for (const stream of streams) {
    const [len, groups] = await Promise.all([redis.xlen(stream), redis.xinfo('GROUPS', stream).catch(() => [] as unknown[])]);
    length += len;
    for (const g of groups as unknown[][]) {
      const f = new Map<string, unknown>();
      for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
      if (f.get('name') !== CONSUMER_GROUP) continue;
      grouped = true;
      pending += Number(f.get('pending') ?? 0);
      // `lag` is null when Redis cannot tell (entries deleted past the group's position).
      const l = f.get('lag');
      lag = l === null || l === undefined || lag === undefined ? undefined : lag + Number(l);
    }
  }
  const rows: Row[] = [['gambit.estimator.stream.length', length, {}]];
  if (grouped) rows.push(['gambit.estimator.stream.pending', pending, {}]);
  if (grouped && lag !== undefined) rows.push(['gambit.estimator.stream.lag', lag, {}]);
  return rows;
}

async function classRows(redis: RedisLike, ks: KeySpace, maxClasses: number): Promise<Row[]> {
  const c = controlKeys(ks);
  const total = await redis.scard(c.classes);
  const ids = total <= CENSUS_MAX_CLASSES ? await redis.smembers(c.classes) : await redis.srandmember(c.classes, CENSUS_MAX_CLASSES);
  // One command per class (a Cluster cannot pipeline keys of different slots).
  const states = await Promise.all(ids.map(async (id) => ({ id, h: await redis.hmget(classKeys(ks, id).posterior, 'stage', 'a', 'b', 'n', 'tenant') })));
  const census = new Map<string, number>([['shadow', 0], ['canary', 0], ['online', 0], ['killed', 0]]);
  const known: Array<{ id: string; stage: string; a: number; b: number; n: number; tenant: string }> = [];
  for (const { id, h } of states) {
    const [stage, a, b, n, tenant] = h;
    if (stage === null || stage === undefined) continue;
    census.set(stage, (census.get(stage) ?? 0) + 1);
    known.push({ id, stage, a: Number(a), b: Number(b), n: Number(n ?? 0), tenant: tenant ?? '' });
  }
  const rows: Row[] = [['gambit.classes.total', total, {}]];
  for (const [stage, count] of census) rows.push(['gambit.classes', count, { 'gambit.stage': stage }]);
  known.sort((x, y) => y.n - x.n || (x.id < y.id ? -1 : 1));
  for (const k of known.slice(0, maxClasses)) {
    const attrs = { 'gambit.edge.class': k.id, 'gambit.tenant': k.tenant, 'gambit.stage': k.stage };
    if (k.a > 0 && k.b > 0) rows.push(['gambit.class.posterior.mean', k.a / (k.a + k.b), attrs]);
    rows.push(['gambit.class.observations', k.n, attrs]);
  }
  return rows;
}

async function killRows(redis: RedisLike, ks: KeySpace): Promise<Row[]> {
  const k = parseKillHash(await redis.hgetall(controlKeys(ks).kill));
  return [
    ['gambit.kill.active', k.global === undefined ? 0 : 1, { 'gambit.kill.scope': 'global' }],
    ['gambit.kill.active', Object.keys(k.tenants).length, { 'gambit.kill.scope': 'tenant' }],
    ['gambit.kill.active', Object.keys(k.classes).length, { 'gambit.kill.scope': 'class' }],
    ['gambit.kill.version', k.version, {}],
  ];
}

export function observeEstimator(
  meter: Meter,
  src: { redis: RedisLike; ks: KeySpace; streams: readonly string[]; counters: ProcessorCounters; maxClasses: number },
  log: Logger,
): void {
  observeGauges(
    meter,
    [
      { name: 'gambit.estimator.stream.length', description: 'Entries in the outcome stream' },
      { name: 'gambit.estimator.stream.lag', description: 'Outcome entries not yet delivered to the estimators (consumer-group lag)' },
      { name: 'gambit.estimator.stream.pending', description: 'Outcome entries delivered but not acknowledged' },
    ],
    () => streamRows(src.redis, src.streams),
    log,
  );
  observeGauges(
    meter,
    [
      { name: 'gambit.classes.total', description: 'Known edge classes' },
      { name: 'gambit.classes', description: 'Edge classes by calibration stage (M9)' },
      { name: 'gambit.class.posterior.mean', description: 'Posterior mean success probability of the classes with the most outcomes' },
      { name: 'gambit.class.observations', description: 'Outcomes counted in the posterior of the classes with the most outcomes' },
    ],
    () => classRows(src.redis, src.ks, src.maxClasses),
    log,
  );
  observeGauges(
    meter,
    [
      { name: 'gambit.kill.active', description: 'Kills in force, by scope' },
      { name: 'gambit.kill.version', description: 'Kill-switch version' },
    ],
    () => killRows(src.redis, src.ks),
    log,
  );
  const entries = meter.createObservableCounter('gambit.estimator.entries', { description: 'Outcome-stream entries handled by this estimator, by result' });
  const alarms = meter.createObservableCounter('gambit.estimator.alarms', { description: 'Drift alarms raised by this estimator (class kills, M9.5)' });
  const transitions = meter.createObservableCounter('gambit.estimator.transitions', { description: 'Stage transitions applied by this estimator (M9)' });
  meter.addBatchObservableCallback(
    (r) => {
      r.observe(entries, src.counters.applied, { 'gambit.estimator.result': 'applied' });
      r.observe(entries, src.counters.duplicates, { 'gambit.estimator.result': 'duplicate' });
      r.observe(entries, src.counters.dead, { 'gambit.estimator.result': 'dead' });
      r.observe(alarms, src.counters.alarms);
      r.observe(transitions, src.counters.transitions);
    },
    [entries, alarms, transitions],
  );
}

/** /readyz of the estimator: Redis (commands and the blocking reader), its scripts, the stream consumer. */
export function estimatorReadiness(redis: RedisLike, blocking: readonly RedisLike[], consumerRunning: () => boolean): Readiness {
  return new Readiness([
    redisCheck('redis', redis),
    // One blocking reader per outcome shard; the first keeps its historical name.
    ...blocking.map((b, i) => redisCheck(i === 0 ? 'redis_stream' : `redis_stream_${i}`, b)),
    scriptsCheck(redis, ESTIMATOR_SCRIPTS),
    runningCheck('outcome_consumer', consumerRunning),
  ]);
}
