/**
 * Types of the method's decision core (METHOD.md M1-M7). Pure data: no I/O, no clock.
 * Everything here is shared by the live scheduler, the estimator and offline replay, so that
 * there is exactly one implementation of the rule.
 */

/** M5: the dependency-type taxonomy. */
export const DEPENDENCY_TYPES = [
  'passthrough',
  'lookup',
  'validation_gate',
  'structured_extract',
  'router_k_way',
  'tool_args',
  'free_text',
] as const;
export type DependencyType = (typeof DEPENDENCY_TYPES)[number];

/** M6: declared effects of an operation. */
export const EFFECTS = ['none', 'idempotent', 'staged', 'irreversible'] as const;
export type Effects = (typeof EFFECTS)[number];

/** M9: calibration stage of an edge class. `replay` is offline only. */
export const STAGES = ['replay', 'shadow', 'canary', 'online', 'killed'] as const;
export type Stage = (typeof STAGES)[number];

/** M3: the operator dial and the value of time. */
export interface Dial {
  /** α ∈ [0, 1]: 1 = latency first (most speculation), 0 = cost first. */
  readonly alpha: number;
  /** λ: dollars per second of end-to-end latency saved. */
  readonly lambdaUsdPerSec: number;
}

/** M5: a Beta(a, b) distribution over an edge class's hit probability. */
export interface BetaParams {
  readonly a: number;
  readonly b: number;
}

/** M5: how P is read off the posterior. */
export type PosteriorMode = { readonly kind: 'mean' } | { readonly kind: 'lower_bound'; readonly quantile: number };

/** M2: token counts of one LLM call. */
export interface TokenUsage {
  /** Input tokens billed at the full input rate (not served from cache). */
  readonly inputTokens: number;
  /** Input tokens served from the provider's prompt cache. */
  readonly cachedInputTokens: number;
  /** Input tokens written to the prompt cache (billed at the cache-write rate where one exists). */
  readonly cacheWriteTokens?: number;
  readonly outputTokens: number;
}

/** M2: $ per million tokens for one model, with an optional long-context tier. */
export interface ModelRates {
  readonly provider: string;
  readonly model: string;
  readonly inputPerMTokUsd: number;
  readonly cachedInputPerMTokUsd: number;
  readonly cacheWritePerMTokUsd?: number;
  readonly outputPerMTokUsd: number;
  /** Above `thresholdTokens` of prompt, every token of the call is billed at these rates. */
  readonly longContext?: {
    readonly thresholdTokens: number;
    readonly inputPerMTokUsd: number;
    readonly cachedInputPerMTokUsd: number;
    readonly cacheWritePerMTokUsd?: number;
    readonly outputPerMTokUsd: number;
  };
  /** Where the rates came from: `genai-prices`, `configured`, `snapshot`. */
  readonly source: string;
}

/** M2: where rates come from. Implementations: genai-prices, configured overrides, a frozen snapshot. */
export interface PriceTable {
  /** Rates for a model, or undefined when the model is unknown and has no configured rates. */
  rates(provider: string, model: string): ModelRates | undefined;
  /** Configured per-call price of a tool, in dollars (0 when none is configured). */
  toolCallUsd(tool: string): number;
}

/**
 * Outcome of one decision's guess (M4, M5), joined to its decision by `decisionId`: `hit`,
 * `miss`, `cancelled` for a launched speculation; `shadow_hit`, `shadow_miss` for a guess scored
 * without a launch (a WAIT for any reason, named by the outcome's `waitReason`), which updates the
 * posterior and the drift window at zero cost.
 */
export const OUTCOME_KINDS = ['hit', 'miss', 'cancelled', 'shadow_hit', 'shadow_miss'] as const;
export type OutcomeKind = (typeof OUTCOME_KINDS)[number];

/** M4: why a decision waited (or `ev` when the rule said SPECULATE). */
export const DECISION_REASONS = [
  'ev', // the EV rule passed: SPECULATE
  'below_threshold', // the EV rule failed: WAIT
  'inadmissible', // effects irreversible, or disclosure not allowed (rule not evaluated)
  'killed', // kill-switch (class, tenant, global)
  'estimator_unavailable', // M9: no fresh estimator heartbeat, so no drift watch: fail safe, not a kill
  'stage', // calibration stage forbids launching (shadow, or canary not sampled)
  'budget', // tenant's speculative budget cannot cover C_spec
  'no_prediction', // no guess available for an upstream
  'disabled', // speculation turned off for the run or edge
  'predictor', // M10 stage 1: the guess of a paid predictor (a cheap model) is not worth buying
  'zero_value', // M4: ΔT = 0 or L = 0, a launch would be a pure cost
  'unpriced', // M2: the node's model has no price, so C_spec is unknown (never taken as free)
] as const;
export type DecisionReason = (typeof DECISION_REASONS)[number];
