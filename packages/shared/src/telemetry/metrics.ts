/**
 * The one metrics interface of Gambit (issue 12 item 1). Components receive a `Metrics` through
 * their constructors and call it at the stable seams where a record is written exactly once: a
 * decision record (M4), an outcome (M4, M9), a billed try of an attempt (M2), a run's end, an
 * outcome applied by the estimator. `createMetrics` implements it on an OpenTelemetry Meter;
 * `noopMetrics` is for components built without telemetry (unit tests, tools).
 *
 * Money is counted in integer nano-dollars (as in the ledgers), so a counter can be checked
 * against the run records exactly; Prometheus shows them as `..._nano_usd_total`.
 *
 * Cardinality is bounded by construction: labels are closed enums (action, reason, stage,
 * outcome kind, attempt kind, token type, status), provider/model names (a deployment's
 * configured set), and the tenant, capped per process at `maxTenants` distinct values (later
 * tenants are counted under `_other`). Per-class series live only in the estimator's gauges,
 * capped separately (see class-gauges in the estimator).
 */
import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import type { DecisionRecord, Outcome } from '../schemas/records.js';
import type { TokenUsage } from '../core/types.js';
import { ATTR } from './attributes.js';

/** A billed try of an attempt, as the worker recorded it (finishAttempt). */
export interface AttemptMetric {
  readonly attemptKind: 'authoritative' | 'speculative';
  readonly op: { readonly kind: 'llm'; readonly provider: string; readonly model: string } | { readonly kind: 'tool'; readonly tool: string };
  /** `ok` (the operation finished) or `aborted` (stopped early, billed for what it consumed). */
  readonly result: 'ok' | 'aborted';
  readonly usage: TokenUsage;
  readonly costNanoUsd: number;
  readonly durationSec: number;
}

/** A try that failed before it could be billed. */
export interface AttemptFailureMetric {
  readonly attemptKind: 'authoritative' | 'speculative';
  readonly op: AttemptMetric['op'];
  readonly errorType: string;
  readonly durationSec: number;
}

export interface Metrics {
  /** A decision record was written (once per decision id). */
  decision(r: DecisionRecord): void;
  /** An outcome was recorded in its run (once per outcome id). */
  outcome(o: Outcome): void;
  /** A run ended; `durationSec` from submission to the end. */
  runEnded(r: { readonly tenant: string; readonly status: string; readonly durationSec: number }): void;
  /** The worker billed a try (finishAttempt accepted its usage and cost). */
  attemptBilled(a: AttemptMetric): void;
  /** A try failed with an error before anything was billed. */
  attemptFailed(a: AttemptFailureMetric): void;
  /** The estimator applied an outcome to its class (not a duplicate); λ is the tenant's, in $/s. */
  outcomeApplied(o: Outcome, lambdaUsdPerSec: number): void;
}

export const noopMetrics: Metrics = {
  decision() {},
  outcome() {},
  runEnded() {},
  attemptBilled() {},
  attemptFailed() {},
  outcomeApplied() {},
};

/** Keeps the first `max` distinct values; later ones map to `_other` (bounded label cardinality). */
export class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}
  of(value: string): string {
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.max) return '_other';
    this.seen.add(value);
    return value;
  }
  values(): string[] {
    return [...this.seen];
  }
}

/** Bucket boundaries the GenAI semantic conventions recommend. */
export const GEN_AI_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
export const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const RUN_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000];

/** Metric names (OpenTelemetry form; the Prometheus exporter turns dots into underscores). */
export const METRIC = {
  decisions: 'gambit.decisions',
  outcomes: 'gambit.speculation.outcomes',
  wasteNanoUsd: 'gambit.speculation.waste.nano_usd',
  savedSeconds: 'gambit.speculation.saved.seconds',
  runDuration: 'gambit.run.duration',
  spendNanoUsd: 'gambit.spend.nano_usd',
  tokenUsage: 'gen_ai.client.token.usage',
  operationDuration: 'gen_ai.client.operation.duration',
  appliedOutcomes: 'gambit.estimator.outcomes.applied',
  savedNanoUsd: 'gambit.speculation.saved.nano_usd',
} as const;

function opAttributes(op: AttemptMetric['op']): Attributes {
  return op.kind === 'llm'
    ? { [ATTR.genAiOperation]: 'chat', [ATTR.genAiProvider]: op.provider, [ATTR.genAiRequestModel]: op.model }
    : { [ATTR.genAiOperation]: 'execute_tool', [ATTR.genAiToolName]: op.tool };
}

/** The implementation also lists the tenants it labels (the gauges of per-tenant budgets use them). */
export interface MeteredMetrics extends Metrics {
  tenants(): string[];
}

export function createMetrics(meter: Meter, opts: { maxTenants: number }): MeteredMetrics {
  const tenants = new BoundedLabel(opts.maxTenants);
  const counter = (name: string, description: string, unit?: string): Counter => meter.createCounter(name, { description, ...(unit ? { unit } : {}) });
  const histogram = (name: string, description: string, unit: string, buckets: number[]): Histogram =>
    meter.createHistogram(name, { description, unit, advice: { explicitBucketBoundaries: buckets } });

  const decisions = counter(METRIC.decisions, 'Decision records written (M4), by action, reason, stage and phase');
  const outcomes = counter(METRIC.outcomes, 'Speculation outcomes recorded (hit, miss, cancelled, shadow_hit, shadow_miss)');
  const waste = counter(METRIC.wasteNanoUsd, 'Dollars spent on speculations that bought nothing, in nano-dollars');
  const saved = counter(METRIC.savedSeconds, 'Seconds of workflow latency saved by speculation hits', 's');
  const runDuration = histogram(METRIC.runDuration, 'Runs from submission to end, by final status', 's', RUN_DURATION_BUCKETS);
  const spend = counter(METRIC.spendNanoUsd, 'Dollars billed for attempts (LLM tokens at their rates, tool prices), in nano-dollars');
  const tokens = histogram(METRIC.tokenUsage, 'Number of input and output tokens used per LLM call', '{token}', GEN_AI_TOKEN_BUCKETS);
  const duration = histogram(METRIC.operationDuration, 'GenAI operation duration (LLM calls and tool executions)', 's', GEN_AI_DURATION_BUCKETS);
  // The estimator applies tens of thousands of outcomes a second: a synchronous Counter.add hashes
  // its attributes on every call (about a sixth of the estimator's CPU per outcome, issue 13
  // item 2). These two are kept as plain running totals per (tenant, kind) and reported when a
  // reader collects, as observable counters (the same cumulative series, scraped exactly).
  const appliedTotals = new Map<string, { attrs: Attributes; count: number; savedNano: number }>();
  meter
    .createObservableCounter(METRIC.appliedOutcomes, { description: 'Outcomes applied to their class posterior by the estimator (duplicates excluded)' })
    .addCallback((r) => {
      for (const t of appliedTotals.values()) r.observe(t.count, t.attrs);
    });
  meter
    .createObservableCounter(METRIC.savedNanoUsd, { description: 'Seconds saved valued at the tenant\'s λ ($/s), in nano-dollars' })
    .addCallback((r) => {
      for (const t of appliedTotals.values()) if (t.savedNano > 0) r.observe(t.savedNano, t.attrs);
    });

  return {
    tenants: () => tenants.values(),
    decision(r) {
      decisions.add(1, {
        [ATTR.tenant]: tenants.of(r.tenant),
        [ATTR.decisionAction]: r.action,
        [ATTR.decisionReason]: r.reason,
        [ATTR.decisionStage]: r.stage,
        [ATTR.decisionPhase]: r.phase,
      });
    },
    outcome(o) {
      const attrs = { [ATTR.tenant]: tenants.of(o.tenant), [ATTR.outcomeKind]: o.kind };
      outcomes.add(1, attrs);
      const wasteNano = Math.round(o.wasteUsd * 1e9);
      if (wasteNano > 0) waste.add(wasteNano, attrs);
      if (o.secondsSaved > 0) saved.add(o.secondsSaved, attrs);
    },
    runEnded(r) {
      runDuration.record(r.durationSec, { [ATTR.tenant]: tenants.of(r.tenant), [ATTR.runStatus]: r.status });
    },
    attemptBilled(a) {
      const attrs = { ...opAttributes(a.op), [ATTR.attemptKind]: a.attemptKind };
      if (a.costNanoUsd > 0) spend.add(a.costNanoUsd, { ...attrs, [ATTR.attemptResult]: a.result });
      duration.record(a.durationSec, a.result === 'ok' ? attrs : { ...attrs, [ATTR.errorType]: 'aborted' });
      if (a.op.kind === 'llm') {
        tokens.record(a.usage.inputTokens, { ...attrs, [ATTR.genAiTokenType]: 'input' });
        tokens.record(a.usage.outputTokens, { ...attrs, [ATTR.genAiTokenType]: 'output' });
      }
    },
    attemptFailed(a) {
      duration.record(a.durationSec, { ...opAttributes(a.op), [ATTR.attemptKind]: a.attemptKind, [ATTR.errorType]: a.errorType });
    },
    outcomeApplied(o, lambdaUsdPerSec) {
      const tenant = tenants.of(o.tenant);
      const key = `${tenant}\u0000${o.kind}`;
      let t = appliedTotals.get(key);
      if (t === undefined) {
        t = { attrs: { [ATTR.tenant]: tenant, [ATTR.outcomeKind]: o.kind }, count: 0, savedNano: 0 };
        appliedTotals.set(key, t);
      }
      t.count++;
      const nano = Math.round(o.secondsSaved * lambdaUsdPerSec * 1e9);
      if (nano > 0) t.savedNano += nano;
    },
  };
}
