/**
 * Executes an `llm` operation: streams the completion from the named provider, publishes
 * throttled partial output (M8) when asked, and prices the call (M2). On abort it bills the
 * fractional waste (M8): input tokens of the prompt plus the output tokens of the text streamed
 * before the abort, counted with the tokenizer and marked estimated.
 */
import {
  countTokens,
  type LlmProvider,
  type LlmRequest,
  type Logger,
  llmCostUsd,
  type OpJob,
  type PriceTable,
  RetryableError,
  StreamAbortedError,
  type TokenUsage,
  UnknownModelError,
  usdToNano,
} from '@gambit/shared';
import type { KeySpace, RedisLike } from '@gambit/shared/redis';
import type { AdvanceSink } from './events.js';
import { type PartialThrottle, PartialPublisher } from './partials.js';
import type { ProviderRegistry } from './providers/index.js';
import { readSimOverride } from './sim-overrides.js';

export type ExecResult =
  | {
      readonly kind: 'done';
      readonly output: string;
      readonly usage: TokenUsage;
      readonly usageEstimated: boolean;
      readonly costNanoUsd: number;
      readonly finishReason?: string;
      /** M4: ms from the call's start to its first streamed text (undefined when nothing streamed before the end). */
      readonly ttftMs?: number;
    }
  | { readonly kind: 'aborted'; readonly partial: string; readonly usage: TokenUsage; readonly usageEstimated: boolean; readonly costNanoUsd: number };

export interface LlmDeps {
  /** `resolve` throws ProviderNotConfiguredError for an unconfigured hosted name without the opt-in (issue 10 item 8). */
  readonly providers: Pick<ProviderRegistry, 'resolve' | 'servedBy'>;
  readonly prices: PriceTable;
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly events: AdvanceSink;
  readonly partials: PartialThrottle;
  readonly nowMs: () => number;
  readonly logger: Logger;
}

type LlmOp = Extract<OpJob['op'], { kind: 'llm' }>;

export async function runLlm(deps: LlmDeps, job: OpJob, op: LlmOp, tryNo: number, signal: AbortSignal): Promise<ExecResult> {
  // Price first: a model we cannot price must fail before any money is spent.
  const rates = deps.prices.rates(op.provider, op.model);
  if (rates === undefined) throw new UnknownModelError(`no rates for model "${op.model}" of provider "${op.provider}"`);
  const provider: LlmProvider = deps.providers.resolve(op.provider).provider;
  let simulate = op.simulate;
  if (provider.name === 'simulated') {
    const outcomes = await readSimOverride(deps.redis, deps.ks, job.tenant, job.workflow, job.nodeId);
    if (outcomes !== undefined) simulate = { ...simulate, outcomes, output: undefined };
  }
  const req: LlmRequest = {
    provider: op.provider,
    model: op.model,
    prompt: op.prompt,
    maxTokens: op.maxTokens,
    seed: op.seed,
    ...(op.system !== undefined ? { system: op.system } : {}),
    ...(simulate !== undefined ? { simulate } : {}),
  };
  const ref = { tenant: job.tenant, runId: job.runId, nodeId: job.nodeId, attemptId: job.attemptId };
  const partials = job.streamPartials ? new PartialPublisher(deps.events, ref, tryNo, deps.partials, deps.nowMs, deps.logger) : undefined;
  let text = '';
  const calledAtMs = deps.nowMs();
  let firstTokenAtMs: number | undefined;
  try {
    for await (const ev of provider.stream(req, signal)) {
      if (ev.type === 'delta') {
        if (firstTokenAtMs === undefined && ev.text !== '') firstTokenAtMs = deps.nowMs();
        text += ev.text;
        partials?.onDelta(text);
      } else {
        await partials?.finish(ev.text);
        return {
          kind: 'done',
          output: ev.text,
          usage: ev.usage,
          usageEstimated: ev.usageEstimated,
          costNanoUsd: usdToNano(llmCostUsd(rates, ev.usage)),
          finishReason: ev.finishReason,
          ...(firstTokenAtMs === undefined ? {} : { ttftMs: firstTokenAtMs - calledAtMs }),
        };
      }
    }
    throw new RetryableError('PROVIDER_UNAVAILABLE', `${op.provider}: stream ended without a done event`);
  } catch (err) {
    if (!signal.aborted) {
      await partials?.flush();
      throw err;
    }
    // M8 fractional waste: providers report no usage after an abort; count what was streamed.
    const partial = err instanceof StreamAbortedError ? err.partialText : text;
    await partials?.flush();
    const reported = (err as { usage?: TokenUsage }).usage;
    const inputTokens = reported !== undefined ? reported.inputTokens : countTokens(op.system ?? '') + countTokens(op.prompt);
    const usage: TokenUsage = {
      inputTokens,
      cachedInputTokens: reported?.cachedInputTokens ?? 0,
      outputTokens: countTokens(partial),
    };
    return { kind: 'aborted', partial, usage, usageEstimated: true, costNanoUsd: usdToNano(llmCostUsd(rates, usage)) };
  }
}
