/**
 * Observable gauges read at collection time (a Prometheus scrape, an OTLP export): queue depth
 * and head age from BullMQ's own counts, and a helper that gives every asynchronous read a
 * deadline, so a scrape answers (without those series) while Redis is unreachable instead of
 * hanging on ioredis's offline queue.
 */
import type { Attributes, Meter } from '@opentelemetry/api';
import type { JobType, Queue } from 'bullmq';
import type { Logger } from '../logger.js';

export const GAUGE_READ_TIMEOUT_MS = 800;

export interface GaugeSpec {
  readonly name: string;
  readonly description: string;
  readonly unit?: string;
}

/**
 * Registers gauges whose values come from one asynchronous read per collection; `read` returns
 * [gauge name, value, attributes] triples. A failed or slow read reports nothing this time.
 */
export function observeGauges(
  meter: Meter,
  specs: readonly GaugeSpec[],
  read: () => Promise<Array<readonly [string, number, Attributes]>>,
  log: Logger,
  timeoutMs = GAUGE_READ_TIMEOUT_MS,
): void {
  const gauges = specs.map((s) => meter.createObservableGauge(s.name, { description: s.description, ...(s.unit ? { unit: s.unit } : {}) }));
  let lastErrorLogMs = 0;
  meter.addBatchObservableCallback(async (result) => {
    let t: NodeJS.Timeout | undefined;
    try {
      const rows = await Promise.race([
        read(),
        new Promise<never>((_, reject) => {
          t = setTimeout(() => reject(new Error(`gauge read took more than ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      for (const [name, value, attrs] of rows) {
        const g = gauges[specs.findIndex((s) => s.name === name)];
        if (g !== undefined) result.observe(g, value, attrs);
      }
    } catch (err) {
      const now = Date.now();
      if (now - lastErrorLogMs > 30_000) {
        lastErrorLogMs = now;
        log.warn({ err: String(err), gauges: specs.map((s) => s.name) }, 'gauge read failed: series skipped');
      }
    } finally {
      clearTimeout(t);
    }
  }, gauges);
}

/** The part of a BullMQ Queue the queue gauges read. */
export type CountableQueue = Pick<Queue, 'name' | 'getJobCounts' | 'getJobs'>;

export const QUEUE_STATES: JobType[] = ['waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed', 'waiting-children'];

/**
 * `gambit.queue.jobs{gambit.queue, gambit.queue.state}` (BullMQ's job counts, the numbers its
 * `exportPrometheusMetrics` prints) and `gambit.queue.head_age` (seconds the job next in line
 * has waited: the oldest of the FIFO `wait` list, the first of the `prioritized` set).
 */
export function observeQueues(meter: Meter, queues: readonly CountableQueue[], log: Logger, nowMs: () => number): void {
  observeGauges(
    meter,
    [
      { name: 'gambit.queue.jobs', description: 'Jobs in each BullMQ queue by state' },
      { name: 'gambit.queue.head_age', description: 'Seconds the job next in line has been waiting (0 when none waits)', unit: 's' },
    ],
    async () => {
      const rows: Array<readonly [string, number, Attributes]> = [];
      await Promise.all(
        queues.map(async (q) => {
          const [counts, [fifo], [prio]] = await Promise.all([
            q.getJobCounts(...QUEUE_STATES),
            q.getJobs(['wait'], 0, 0, true),
            q.getJobs(['prioritized'], 0, 0, true),
          ]);
          for (const state of QUEUE_STATES) rows.push(['gambit.queue.jobs', counts[state] ?? 0, { 'gambit.queue': q.name, 'gambit.queue.state': state }]);
          const oldest = Math.min(fifo?.timestamp ?? Number.POSITIVE_INFINITY, prio?.timestamp ?? Number.POSITIVE_INFINITY);
          rows.push(['gambit.queue.head_age', Number.isFinite(oldest) ? Math.max(0, nowMs() - oldest) / 1000 : 0, { 'gambit.queue': q.name }]);
        }),
      );
      return rows;
    },
    log,
  );
}
