/**
 * M8 cancellation across processes and M6 fencing, with the real worker as a child process:
 * a cancel broadcast (or, when pub/sub missed it, the status re-check) aborts a running LLM
 * attempt mid-stream, and the fractional waste is billed exactly: input tokens of the prompt plus
 * countTokens(the text streamed before the abort), marked estimated, with the output rejected.
 */
import { countTokens, createPriceTable, llmCostUsd, usdToNano } from '@gambit/shared';
import { controlKeys, runKeys } from '@gambit/shared/redis';
import { describe, expect, it } from 'vitest';
import { llmJob, readRecord, setStatus, startWorker, submit, waitFor, useWorkerFixture } from './helpers.js';

const LONG_TEXT = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');

describe('M8 cancellation of a running attempt in a worker process', () => {
  const fx = useWorkerFixture('cancel');

  async function runAndCancel(via: 'broadcast' | 'recheck'): Promise<void> {
    const ks = { prefix: fx.prefix };
    const worker = await startWorker({
      redisUrl: fx.redisUrl,
      prefix: fx.prefix,
      env: {
        GAMBIT_SIM_TIME_SCALE: '1',
        LOG_LEVEL: 'debug',
        // With the broadcast, the re-check must not be what aborts the attempt.
        WORKER_STATUS_CHECK_MS: via === 'broadcast' ? '60000' : '150',
      },
    });
    fx.procs.push(worker);
    const job = llmJob({ tenant: 'acme', runId: 'r1', nodeId: 'draft', attemptId: 's1', kind: 'speculative', output: LONG_TEXT, ttftMs: 10, tokensPerSec: 60, maxTokens: 1000, streamPartials: true });
    await submit(fx.redis, ks, fx.queues, job);
    // Let some tokens stream (partials are published), then cancel as the scheduler does.
    await waitFor(
      async () => (await fx.queues.advance.backlog()).length,
      (n) => n >= 2,
      15_000,
      'partial events',
    );
    await setStatus(fx.redis, ks, 'acme', 'r1', 's1', 'cancelled');
    if (via === 'broadcast') {
      const receivers = await fx.redis.publish(controlKeys(ks).cancelChannel, JSON.stringify({ tenant: 'acme', runId: 'r1', attemptId: 's1', reason: 'miss' }));
      expect(receivers).toBeGreaterThanOrEqual(1);
      await worker.waitForLine((l) => l.includes('attempt cancelled by broadcast'), 5_000);
    } else {
      await worker.waitForLine((l) => l.includes('attempt cancelled (status re-check)'), 5_000);
    }
    const abortedLine = await worker.waitForLine((l) => l.includes('"msg":"attempt aborted"'), 10_000);
    const partialText = (JSON.parse(abortedLine) as { partialText: string }).partialText;
    const rec = await waitFor(
      () => readRecord(fx.redis, ks, 'acme', 'r1', 's1'),
      (r) => r.usage !== undefined,
      10_000,
      'usage recorded',
    );
    // Aborted mid-stream: some, not all, of the output was generated.
    expect(partialText.length).toBeGreaterThan(0);
    expect(LONG_TEXT.startsWith(partialText)).toBe(true);
    expect(partialText.length).toBeLessThan(LONG_TEXT.length);
    expect(rec.status).toBe('cancelled');
    expect(rec.output).toBeUndefined();
    expect(rec.usageEstimated).toBe(true);
    const inputTokens = countTokens('You are terse.') + countTokens(job.op.kind === 'llm' ? job.op.prompt : '');
    expect(rec.usage).toEqual({ inputTokens, cachedInputTokens: 0, outputTokens: countTokens(partialText) });
    const rates = createPriceTable().rates('simulated', 'gpt-4o-mini')!;
    const nano = usdToNano(llmCostUsd(rates, rec.usage!));
    expect(rec.costNanoUsd).toBe(nano);
    const run = await fx.redis.hgetall(runKeys(ks, 'acme', 'r1').run);
    expect(Number(run.costNanoUsd)).toBe(nano);
    expect(Number(run.specCostNanoUsd)).toBe(nano);
    // The scheduler still hears about it, to settle the waste.
    const fin = await waitFor(
      async () => (await fx.queues.advance.backlog()).find((e) => (e.data as { type?: string }).type === 'attempt_finished'),
      (e) => e !== undefined,
      5_000,
      'attempt_finished',
    );
    expect(fin?.data).toMatchObject({ type: 'attempt_finished', attemptId: 's1' });
  }

  it('a cancel broadcast from another process aborts the running job; output tokens = countTokens(partial), estimated', async () => {
    await runAndCancel('broadcast');
  });

  it('without the broadcast (pub/sub dropped it), the status re-check aborts the job the same way', async () => {
    await runAndCancel('recheck');
  });
});
