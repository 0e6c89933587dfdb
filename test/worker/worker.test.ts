/**
 * The worker service as a real child process against a real Redis and real BullMQ queues
 * (ARCHITECTURE.md worker; M2 pricing of every attempt, M6 staging and fencing, M8 cancellation
 * with fractional waste).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compactOpJob, countTokens, createPriceTable, llmCostUsd, usdToNano } from '@gambit/shared';
import { runKeys, tenantKeys, toolKeys } from '@gambit/shared/redis';
import { flattenOtlp } from '@gambit/replay';
import { describe, expect, it } from 'vitest';
import { advanceEvents, createAttempt, llmJob, readRecord, startWorker, submit, toolJob, waitFor, useWorkerFixture } from './helpers.js';

describe('worker service (child process)', () => {
  const fx = useWorkerFixture('worker');

  it('M2: runs a simulated LLM job and records output, usage and cost from the core price table', async () => {
    const ks = { prefix: fx.prefix };
    const tracesFile = join(mkdtempSync(join(tmpdir(), 'gambit-worker-traces-')), 'spans.jsonl');
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env: { GAMBIT_TRACES_EXPORTER: 'file', GAMBIT_TRACES_FILE: tracesFile } }));
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const job = { ...llmJob({ tenant: 'acme', runId: 'r1', nodeId: 'classify', attemptId: 'a1', output: 'billing' }), trace: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } };
    await submit(fx.redis, ks, fx.queues, job);
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r1', 'a1'),
      (r) => r.status === 'succeeded',
      20_000,
      'attempt succeeded',
    );
    expect(rec.output).toBe('billing');
    expect(rec.tries).toBe(1);
    expect(rec.usageEstimated).toBe(false);
    const expectedInput = countTokens('You are terse.') + countTokens(job.op.kind === 'llm' ? job.op.prompt : '');
    expect(rec.usage).toEqual({ inputTokens: expectedInput, cachedInputTokens: 0, outputTokens: countTokens('billing') });
    const rates = createPriceTable().rates('simulated', 'gpt-4o-mini');
    expect(rates).toBeDefined();
    const expectedNano = usdToNano(llmCostUsd(rates!, rec.usage!));
    expect(expectedNano).toBeGreaterThan(0);
    expect(rec.costNanoUsd).toBe(expectedNano);
    const run = await fx.redis.hgetall(runKeys(ks, 'acme', 'r1').run);
    expect(Number(run.costNanoUsd)).toBe(expectedNano);
    expect(run.specCostNanoUsd).toBeUndefined();
    const events = await waitFor(
      () => advanceEvents(fx.queues.advance),
      (e) => e.length >= 1,
      10_000,
      'attempt_finished event',
    );
    expect(events.map((e) => e.data)).toEqual([{ type: 'attempt_finished', tenant: 'acme', runId: 'r1', nodeId: 'classify', attemptId: 'a1', epoch: 0 }]);
    expect(events).toHaveLength(1);
    // The try's span joins the run's trace (W3C context from the job) with GenAI and dollar
    // attributes; the file holds OTLP/JSON lines, and the span is named by the GenAI conventions.
    // The span is written when the try ends, a moment after the job's result (the exporter loads
    // its serialiser on first use): wait for the line rather than read the file once.
    const readSpans = async () => {
      let text = '';
      try {
        text = readFileSync(tracesFile, 'utf8');
      } catch {
        return [];
      }
      return flattenOtlp(
        text
          .trim()
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as unknown),
      );
    };
    const spans = await waitFor(readSpans, (xs) => xs.some((s) => s.name === 'chat gpt-4o-mini'), 10_000, 'the try span in the traces file');
    const span = spans.find((s) => s.name === 'chat gpt-4o-mini');
    expect(span?.traceId).toBe(traceId);
    expect(span?.attributes).toMatchObject({
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.output_tokens': rec.usage?.outputTokens,
      'gambit.cost_usd': expectedNano / 1e9,
      'gambit.attempt.outcome': 'OK',
    });
    rmSync(dirname(tracesFile), { recursive: true, force: true });
  });

  it('M8: publishes throttled partial output with increasing seq, ending with the whole text', async () => {
    const ks = { prefix: fx.prefix };
    fx.procs.push(
      await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix, env: { GAMBIT_SIM_TIME_SCALE: '1', WORKER_PARTIAL_MIN_INTERVAL_MS: '50', WORKER_PARTIAL_MIN_DELTAS: '1000' } }),
    );
    const text = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen';
    const job = llmJob({ tenant: 'acme', runId: 'r2', nodeId: 'draft', attemptId: 'a1', output: text, ttftMs: 10, tokensPerSec: 100, streamPartials: true });
    await submit(fx.redis, ks, fx.queues, job);
    await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r2', 'a1'),
      (r) => r.status === 'succeeded',
      20_000,
      'attempt succeeded',
    );
    const partials = (await advanceEvents(fx.queues.advance)).filter((e) => e.data.type === 'partial').map((e) => e.data as { seq: number; text: string });
    partials.sort((a, b) => a.seq - b.seq);
    // 16 tokens at 100 tok/s is ~160 ms: throttled to every 50 ms, so a few events, not 16.
    expect(partials.length).toBeGreaterThanOrEqual(2);
    expect(partials.length).toBeLessThan(countTokens(text));
    expect(partials.at(-1)?.text).toBe(text);
    for (let i = 1; i < partials.length; i++) {
      expect(partials[i]!.seq).toBeGreaterThan(partials[i - 1]!.seq);
      expect(partials[i]!.text.startsWith(partials[i - 1]!.text)).toBe(true);
    }
  });

  it('M6: a staged tool in a speculative attempt writes only to its staging list', async () => {
    const ks = { prefix: fx.prefix };
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix }));
    const job = toolJob({
      tenant: 'acme',
      runId: 'r3',
      nodeId: 'notify',
      attemptId: 's1',
      kind: 'speculative',
      tool: 'send_message',
      args: { to: 'bob@example.com', body: 'your refund is approved' },
      effects: 'staged',
      priceUsd: 0.001,
    });
    await submit(fx.redis, ks, fx.queues, job);
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r3', 's1'),
      (r) => r.status === 'succeeded',
      20_000,
      'attempt succeeded',
    );
    const keys = runKeys(ks, 'acme', 'r3');
    const staged = (await fx.redis.lrange(keys.staging('s1'), 0, -1)).map((s) => JSON.parse(s));
    expect(staged).toEqual([{ type: 'message', to: 'bob@example.com', body: 'your refund is approved' }]);
    expect(await fx.redis.exists(keys.effects)).toBe(0);
    expect(rec.costNanoUsd).toBe(1_000_000);
    const run = await fx.redis.hgetall(keys.run);
    expect(Number(run.costNanoUsd)).toBe(1_000_000);
    expect(Number(run.specCostNanoUsd)).toBe(1_000_000);
  });

  it('M6: an irreversible tool is refused in a speculative attempt and never runs', async () => {
    const ks = { prefix: fx.prefix };
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix }));
    const job = toolJob({
      tenant: 'acme',
      runId: 'r4',
      nodeId: 'charge',
      attemptId: 's1',
      kind: 'speculative',
      tool: 'charge_card',
      args: { amountCents: 500 },
      effects: 'irreversible',
    });
    await submit(fx.redis, ks, fx.queues, job);
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r4', 's1'),
      (r) => r.status === 'failed',
      20_000,
      'attempt failed',
    );
    expect(rec.error).toMatch(/^CONFLICT:/);
    expect(await fx.redis.llen(toolKeys(ks, 'acme').charges)).toBe(0);
    // The same tool in an authoritative attempt does run.
    await submit(fx.redis, ks, fx.queues, { ...job, kind: 'authoritative', attemptId: 'a1' });
    await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r4', 'a1'),
      (r) => r.status === 'succeeded',
      20_000,
      'authoritative charge',
    );
    const charges = (await fx.redis.lrange(toolKeys(ks, 'acme').charges, 0, -1)).map((s) => JSON.parse(s));
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ kind: 'authoritative', attemptId: 'a1', amountCents: 500 });
  });

  it('issue 13 item 3: runs a compact payload whose ids, node, epoch and kind come from its job id and lane', async () => {
    const ks = { prefix: fx.prefix };
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix }));
    const full = { ...llmJob({ tenant: 'acme', runId: 'r7', nodeId: 'classify', attemptId: 'classify.a2', epoch: 2, output: 'billing' }), opClass: 'llm:simulated/gpt-4o-mini#abc' };
    await createAttempt(fx.redis, ks, full);
    const jobId = 'acme~r7~classify.a2';
    const data = compactOpJob(full, jobId);
    expect(data).not.toHaveProperty('tenant');
    expect(data).not.toHaveProperty('epoch');
    await fx.queues.ops.add('classify', data, { jobId, attempts: 3, removeOnFail: true });
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r7', 'classify.a2'),
      (r) => r.status === 'succeeded',
      20_000,
      'attempt succeeded',
    );
    expect(rec.output).toBe('billing');
    // Enqueued without removeOnComplete (as the scheduler does): the worker's own option deletes it.
    expect(await waitFor(() => fx.queues.ops.getJob(jobId), (j) => j === undefined, 10_000, 'the completed job deleted')).toBeUndefined();
    const events = await waitFor(
      () => advanceEvents(fx.queues.advance),
      (e) => e.length >= 1,
      10_000,
      'attempt_finished event',
    );
    expect(events.map((e) => e.data)).toEqual([{ type: 'attempt_finished', tenant: 'acme', runId: 'r7', nodeId: 'classify', attemptId: 'classify.a2', epoch: 2 }]);
    // The operation's sample is learned under its whole class.
    const classes = await waitFor(
      async () => fx.redis.smembers(tenantKeys(ks, 'acme').opClasses),
      (xs) => xs.length > 0,
      10_000,
      'the class sample',
    );
    expect(classes).toEqual(['llm:simulated/gpt-4o-mini#abc']);
  });

  it('rejects an invalid payload non-retryably, naming the field', async () => {
    const ks = { prefix: fx.prefix };
    fx.procs.push(await startWorker({ redisUrl: fx.redisUrl, prefix: fx.prefix }));
    const good = llmJob({ tenant: 'acme', runId: 'r5', nodeId: 'n', attemptId: 'a1' });
    const bad = { ...good, op: { ...good.op, maxTokens: -3 } };
    await submit(fx.redis, ks, fx.queues, bad as never, { attempts: 5 });
    const job = await waitFor(
      async () => fx.queues.ops.getJob('r5-a1'),
      (j) => j?.failedReason !== undefined && j.failedReason !== null && j.finishedOn !== undefined,
      20_000,
      'job failed',
    );
    expect(job?.failedReason).toContain('job.data.op.maxTokens');
    expect(job?.attemptsMade).toBe(1);
    expect(await job?.getState()).toBe('failed');
    const rec = await readRecord(fx.redis, ks, 'acme', 'r5', 'a1');
    expect(rec.status).toBe('failed');
    expect(rec.error).toContain('op.maxTokens');

    // M10: a speculative attempt enqueued on the authoritative queue would take an authoritative slot.
    const misplaced = llmJob({ tenant: 'acme', runId: 'r5', nodeId: 'n', attemptId: 's1', kind: 'speculative' });
    await createAttempt(fx.redis, ks, misplaced);
    await fx.queues.ops.add('op', misplaced, { jobId: 'r5-s1', attempts: 3 });
    const failed = await waitFor(
      async () => fx.queues.ops.getJob('r5-s1'),
      (j) => typeof j?.failedReason === 'string' && j.finishedOn !== undefined,
      20_000,
      'misplaced job failed',
    );
    expect(failed?.failedReason).toContain('job.data.kind');
    expect((await readRecord(fx.redis, ks, 'acme', 'r5', 's1')).status).toBe('failed');
  });
});
