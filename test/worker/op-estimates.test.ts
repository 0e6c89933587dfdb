/**
 * M4 operation classes, live: a real worker process records every completed operation under the
 * operation class its job names, and the scheduler's OperationEstimateCache reads the class's
 * learned duration, time to first token and output tokens back (one pipeline, cached), shared across the tenant's runs
 * and never keyed by node id.
 */
import { decodeEstimates, Distribution, operationClassOf, parseWorkflow, sampleIncrements, type WorkflowNode } from '@gambit/shared';
import { opClassKeys, recordOperationSample, tenantKeys } from '@gambit/shared/redis';
import { describe, expect, it } from 'vitest';
import { OperationEstimateCache } from '../../services/scheduler/src/engine/op-estimates.js';
import { llmJob, readRecord, startWorker, submit, useWorkerFixture, waitFor } from './helpers.js';

describe('M4 operation-class estimates (worker writes, scheduler reads)', () => {
  const fx = useWorkerFixture('opest');

  it('a worker records each completed operation under its class; two node ids with one class share it', async () => {
    const ks = { prefix: fx.prefix };
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix }));
    const opClass = 'llm:simulated/gpt-4o-mini#classify1';
    // Two positions (node ids) running the same kind of work.
    const jobs = [
      { ...llmJob({ tenant: 'acme', runId: 'r1', nodeId: 'first', attemptId: 'a1', output: 'a b c d', ttftMs: 150, tokensPerSec: 1000 }), opClass },
      { ...llmJob({ tenant: 'acme', runId: 'r2', nodeId: 'second', attemptId: 'a2', output: 'a b c d', ttftMs: 150, tokensPerSec: 1000 }), opClass },
    ];
    for (const j of jobs) await submit(fx.redis, ks, fx.queues, j);
    for (const [i, j] of jobs.entries())
      await waitFor(() => readRecord(fx.redis, ks, 'acme', j.runId, `a${i + 1}`), (r) => r.status === 'succeeded', 20_000, `attempt a${i + 1} succeeded`);
    const key = opClassKeys(ks, 'acme', opClass).dist;
    const hash = await waitFor(() => fx.redis.hgetall(key), (h) => Number(h['d:n'] ?? 0) === 2, 10_000, 'two samples recorded');
    expect(Number(hash['o:n'])).toBe(2);
    // Time to first token, measured at the first streamed text.
    expect(Number(hash['f:n'])).toBe(2);
    expect(Number(hash['f:sum'])).toBeLessThanOrEqual(Number(hash['d:sum']));
    expect(Number(hash['o:sum'])).toBeGreaterThan(0);
    // The measured duration of the simulated calls, in the model's time: the worker runs at
    // GAMBIT_SIM_TIME_SCALE 0.05 (helpers.ts), so 150 ms to the first token take 7.5 ms of wall
    // clock and are recorded as ≥ 150 ms (issue 9: recorded as measured, learned durations were
    // 20× shorter than the latency profiles).
    expect(Number(hash['d:sum']) / 2).toBeGreaterThanOrEqual(150);
    expect(Number(hash['f:sum']) / 2).toBeGreaterThanOrEqual(150);
    expect(await fx.redis.smembers(tenantKeys(ks, 'acme').opClasses)).toEqual([opClass]);
    // A job that names no class (from an older scheduler) records nothing.
    await submit(fx.redis, ks, fx.queues, llmJob({ tenant: 'acme', runId: 'r3', nodeId: 'x', attemptId: 'a3', output: 'z' }));
    await waitFor(() => readRecord(fx.redis, ks, 'acme', 'r3', 'a3'), (r) => r.status === 'succeeded', 20_000, 'attempt a3 succeeded');
    expect(await fx.redis.smembers(tenantKeys(ks, 'acme').opClasses)).toEqual([opClass]);
  });

  it('one sample is one script on the class hash: the same distributions as one HINCRBYFLOAT per field, and a corrupt field is refused', async () => {
    const ks = { prefix: fx.prefix };
    const opClass = 'llm:simulated/gpt-4o-mini#sum';
    const key = opClassKeys(ks, 'acme', opClass).dist;
    const reference = `${fx.prefix}:reference`;
    // Fractional durations so sums carry rounding, several bins, a metric absent in some samples.
    const samples = Array.from({ length: 40 }, (_, i) => ({ durationMs: 0.1 + i * 37.3, ttftMs: i % 3 === 0 ? undefined : i * 1.7, outputTokens: i * i }));
    for (const s of samples) {
      await recordOperationSample(fx.redis, ks, 'acme', opClass, s);
      for (const [f, by] of sampleIncrements(s)) await fx.redis.hincrbyfloat(reference, f, by);
    }
    const got = await fx.redis.hgetall(key);
    const want = await fx.redis.hgetall(reference);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const [f, v] of Object.entries(want)) expect(Number(got[f])).toBeCloseTo(Number(v), 6);
    const est = decodeEstimates(got);
    expect(est.durationMs.n).toBe(40);
    expect(est.ttftMs.n).toBe(26);
    expect(est.outputTokens.sum).toBe(samples.reduce((a, s) => a + s.outputTokens, 0));
    // The class enters the tenant's set once, whatever the number of samples.
    expect(await fx.redis.smembers(tenantKeys(ks, 'acme').opClasses)).toEqual([opClass]);
    // A stored value that is not a number: an error naming the field, and nothing written.
    await fx.redis.hset(key, 'd:n', 'x');
    await expect(recordOperationSample(fx.redis, ks, 'acme', opClass, { durationMs: 5 })).rejects.toThrow(/field d:n .* is not a number/);
    expect(await fx.redis.hget(key, 'd:sum')).toBe(got['d:sum']);
  });

  it('the scheduler cache reads a workflow\'s classes, uses them from minSamples on, and refreshes after its TTL', async () => {
    const ks = { prefix: fx.prefix };
    let now = 1_000;
    const clock = { nowMs: () => now };
    const wf = parseWorkflow({
      name: 'w',
      nodes: [
        { id: 'tests', kind: 'tool', tool: 'run_tests', effects: 'none' },
        { id: 'grep', kind: 'tool', tool: 'grep', effects: 'none' },
      ],
      edges: [],
    });
    const tests = wf.nodes[0] as WorkflowNode;
    for (let i = 0; i < 4; i++) await recordOperationSample(fx.redis, ks, 't2', operationClassOf(tests), { durationMs: 30_000 + i });
    const cache = new OperationEstimateCache(fx.redis, ks, clock, { ttlMs: 1000, minSamples: 5 });
    let est = await cache.forNodes('t2', wf.nodes);
    expect(est.get('tests')?.durationMs.n).toBe(4);
    expect(cache.learnedDuration(est.get('tests'))).toBeUndefined(); // 4 < minSamples: the static estimate stands
    expect(est.get('grep')?.durationMs.n).toBe(0);
    await recordOperationSample(fx.redis, ks, 't2', operationClassOf(tests), { durationMs: 30_004 });
    expect((await cache.forNodes('t2', wf.nodes)).get('tests')?.durationMs.n).toBe(4); // cached
    now += 1001;
    est = await cache.forNodes('t2', wf.nodes);
    const d = cache.learnedDuration(est.get('tests'));
    expect(d?.meanMs).toBe(30_002);
    expect(d!.quantileMs(0.5)).toBeGreaterThan(25_000);
    expect(d!.cdf(1000)).toBe(0);
    expect(Distribution.mean(est.get('tests')!.durationMs)).toBe(30_002);
    expect(cache.learnedDuration(est.get('grep'))).toBeUndefined();
  });
});
