/**
 * Budgets that hold (issue 10 item 3, M10): the most a launch can cost, reserved before it is
 * enqueued and settled down to its actual cost afterwards, so a tenant's spend never passes its
 * budget whatever a workflow declares. An LLM call's worst case is its rendered prompt at the full
 * (uncached) input rate plus `maxTokens` at the output rate (providers stop there), plus a margin
 * for the chat framing real providers add to the prompt's tokens; a tool call's is its price.
 */
import { countTokens, llmCostUsd, type OpSpec, type PriceTable } from '@gambit/shared';

/** Tokens a provider may add to a prompt for message framing (roles, separators), reserved on top. */
export const INPUT_FRAMING_TOKENS = 32;

/** The most `op` can cost, nano-USD (integer, rounded up); undefined for an unpriced model. */
export function worstCaseNanoUsd(priceTable: PriceTable, op: OpSpec): number | undefined {
  if (op.kind === 'tool') return Math.ceil(op.priceUsd * 1e9);
  const rates = priceTable.rates(op.provider, op.model);
  if (rates === undefined) return undefined;
  const inputTokens = countTokens(op.system ?? '') + countTokens(op.prompt) + INPUT_FRAMING_TOKENS;
  return Math.ceil(llmCostUsd(rates, { inputTokens, cachedInputTokens: 0, outputTokens: op.maxTokens }) * 1e9);
}
