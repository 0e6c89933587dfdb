/**
 * The scheduler's gauges and readiness (issue 12 item 1, issue 11 item 4), wired by main.ts:
 * queue depth and head age of every queue it enqueues to (BullMQ's counts), what this scheduler
 * sees of the control plane (estimator heartbeat fresh, kills in force by scope, kill-switch
 * version), and the speculative budget of the tenants it has decided for (reserved, spent and
 * limit, nano-dollars; at most GAMBIT_METRICS_MAX_TENANTS tenants). Every scheduler reads the
 * same Redis, so aggregate these with `max`, not `sum` (docs/operations.md).
 */
import type { ControlPlane, Logger } from '@gambit/shared';
import type { AdvanceStream } from '@gambit/shared/redis';
import { type RedisLike, RUN_SCRIPT_FILES } from '@gambit/shared/redis';
import {
  type CountableQueue,
  observeGauges,
  observeQueues,
  Readiness,
  redisCheck,
  runningCheck,
  scriptsCheck,
} from '@gambit/shared/telemetry';
import type { Meter } from '@opentelemetry/api';
import type { JobType } from 'bullmq';
import type { TenantStore } from './tenants.js';

export interface SchedulerGaugeSources {
  readonly queues: readonly CountableQueue[];
  readonly control: Pick<ControlPlane, 'heartbeatFresh' | 'killState'>;
  readonly tenants: Pick<TenantStore, 'get' | 'budget'>;
  readonly seenTenants: () => string[];
  readonly nowMs: () => number;
}

export function observeScheduler(meter: Meter, src: SchedulerGaugeSources, log: Logger): void {
  observeQueues(meter, src.queues, log, src.nowMs);
  meter
    .createObservableGauge('gambit.control.heartbeat_fresh', { description: '1 when this scheduler sees a fresh estimator heartbeat (speculation allowed), else 0' })
    .addCallback((r) => r.observe(src.control.heartbeatFresh() ? 1 : 0));
  meter.createObservableGauge('gambit.kill.active', { description: 'Kills in force as this scheduler sees them, by scope' }).addCallback((r) => {
    const k = src.control.killState();
    r.observe(k.global === undefined ? 0 : 1, { 'gambit.kill.scope': 'global' });
    r.observe(Object.keys(k.tenants).length, { 'gambit.kill.scope': 'tenant' });
    r.observe(Object.keys(k.classes).length, { 'gambit.kill.scope': 'class' });
  });
  meter
    .createObservableGauge('gambit.kill.version', { description: 'Kill-switch version this scheduler has applied' })
    .addCallback((r) => r.observe(src.control.killState().version));
  observeGauges(
    meter,
    [
      { name: 'gambit.tenant.budget.reserved.nano_usd', description: 'Speculative budget reserved and not yet settled, nano-dollars' },
      { name: 'gambit.tenant.budget.spent.nano_usd', description: 'Speculative budget spent (settled waste), nano-dollars' },
      { name: 'gambit.tenant.budget.limit.nano_usd', description: 'The tenant\'s speculative budget, nano-dollars (absent when unlimited)' },
    ],
    async () => {
      const rows: Array<readonly [string, number, Record<string, string>]> = [];
      await Promise.all(
        src.seenTenants().map(async (tenant) => {
          const [b, cfg] = await Promise.all([src.tenants.budget(tenant), src.tenants.get(tenant, src.nowMs())]);
          const a = { 'gambit.tenant': tenant };
          rows.push(['gambit.tenant.budget.reserved.nano_usd', b.reservedNanoUsd, a], ['gambit.tenant.budget.spent.nano_usd', b.spentNanoUsd, a]);
          if (cfg.budgetNanoUsd !== undefined) rows.push(['gambit.tenant.budget.limit.nano_usd', cfg.budgetNanoUsd, a]);
        }),
      );
      return rows;
    },
    log,
  );
}

/** /readyz of the scheduler: Redis (commands and BullMQ connections), run scripts, the advance consumer. */
export function schedulerReadiness(cmd: RedisLike, bull: RedisLike, consumerRunning: () => boolean): Readiness {
  return new Readiness([redisCheck('redis', cmd), redisCheck('redis_queues', bull), scriptsCheck(cmd, RUN_SCRIPT_FILES), runningCheck('advance_consumer', consumerRunning)]);
}

/**
 * The `advance` stream as the queue gauges read queues: `waiting` = entries not yet delivered to a
 * scheduler, `active` = delivered and not yet acknowledged, head age from the oldest entry's id.
 */
export function streamAsQueue(stream: AdvanceStream): CountableQueue {
  const q = {
    name: stream.name,
    async getJobCounts(...states: string[]) {
      const c = await stream.counts();
      return Object.fromEntries(states.map((s) => [s, s === 'waiting' ? c.waiting : s === 'active' ? c.active : 0]));
    },
    async getJobs(types: string[]) {
      if (!types.includes('wait')) return [];
      const c = await stream.counts();
      return c.oldestMs === undefined ? [] : [{ timestamp: c.oldestMs }];
    },
  };
  return q as unknown as CountableQueue;
}

/**
 * Issue 13 item 4: one lane's queue over its queue shards, as the queue gauges read queues (one
 * series per lane whatever QUEUE_SHARDS is): counts summed, head age from the oldest head.
 */
export function shardedQueue(queues: readonly CountableQueue[]): CountableQueue {
  const [first] = queues;
  if (first === undefined) throw new RangeError('shardedQueue: no queues');
  if (queues.length === 1) return first;
  const q = {
    name: first.name,
    async getJobCounts(...states: JobType[]) {
      const all = await Promise.all(queues.map((x) => x.getJobCounts(...states)));
      return Object.fromEntries(states.map((s) => [s, all.reduce((n, c) => n + (c[s] ?? 0), 0)]));
    },
    async getJobs(types: JobType[], start?: number, end?: number, asc?: boolean) {
      const heads = (await Promise.all(queues.map((x) => x.getJobs(types, start, end, asc)))).flat();
      heads.sort((a, b) => a.timestamp - b.timestamp);
      return heads.slice(0, 1);
    },
  };
  return q as unknown as CountableQueue;
}
