/**
 * M9 stage 1, offline replay: runs recorded traces through the decision rule under several
 * policies and reports the counterfactual latency, dollars and waste of each. Runs are taken in
 * start order; posteriors are learned online (posteriors.ts); each run is replayed as a DAG
 * schedule per policy (schedule.ts).
 */
import type { Dial, ModelProfiles, PosteriorMode, PriceTable, PriorOverrides } from '@gambit/shared';
import { type CalibrationOverrides, resolveCalibration, suspectParams, validateDial } from '@gambit/shared';
import type { Run } from '../trace.js';
import { type EstimateMode, learnEstimates } from './estimates.js';
import { compileRun, type RunModel } from './model.js';
import { type KnownP, learnOnline, type RefitResult, type ReplayKill, refitOverrides, refitPriors } from './posteriors.js';
import { type PolicyName, replayRun, type RunOutcome } from './schedule.js';

export interface ReplayOptions {
  readonly policies: readonly PolicyName[];
  readonly dial: Dial;
  readonly prices: PriceTable;
  readonly profiles?: ModelProfiles;
  readonly posteriorMode?: PosteriorMode;
  /** Prior overrides by dependency type (default: the M5 defaults). */
  readonly priors?: PriorOverrides;
  /** Use the priors refit from these same traces instead (in-sample: for exploration). */
  readonly useRefitPriors?: boolean;
  readonly fixedThreshold?: number;
  /**
   * Duration and output-token estimates decisions use: what earlier runs taught per operation
   * class (`history`, default, what the live scheduler knows), each class's distribution over
   * all the runs (`population`, what a perfect learner converges to: the calibrated yardstick),
   * or each run's own values (`recorded`, clairvoyant).
   */
  readonly estimates?: EstimateMode;
  /** Keep every decision record in the result (tests, audits). */
  readonly keepDecisions?: boolean;
  /** Drift detector and kill settings (M9.5; default DEFAULT_CALIBRATION, the live defaults). */
  readonly calibration?: CalibrationOverrides;
  /** The calibrated yardstick: classes whose true P is known use it (posteriors.ts `KnownP`). */
  readonly knownP?: KnownP;
}

export interface PolicyReplay {
  readonly policy: PolicyName;
  readonly runs: RunOutcome[];
}

export interface ReplayResult {
  readonly dial: Dial;
  readonly posteriorMode: PosteriorMode;
  readonly refit: RefitResult[];
  readonly usedRefitPriors: boolean;
  readonly estimates: EstimateMode;
  /** Recorded duration and cost of each run (the trace as it happened). */
  readonly recorded: Array<{ runId: string; durationMs: number; costNano: number }>;
  readonly policies: PolicyReplay[];
  /** Drift alarms the live detector raised on these traces (M9.5): the class was killed, then re-learned. */
  readonly kills: ReplayKill[];
}

export function replay(runs: readonly Run[], opts: ReplayOptions): ReplayResult {
  const dial = validateDial(opts.dial, 'dial');
  const posteriorMode = opts.posteriorMode ?? { kind: 'mean' };
  const ctx = { prices: opts.prices, ...(opts.profiles !== undefined ? { profiles: opts.profiles } : {}) };
  const ordered = [...runs].sort((a, b) => a.startUnixMs - b.startUnixMs);
  const models: RunModel[] = ordered.map((r) => compileRun(r, ctx));
  const refit = refitPriors(ordered);
  const priors = opts.useRefitPriors === true ? { ...refitOverrides(refit), ...(opts.priors ?? {}) } : opts.priors;
  // Drift suspicion at the replay's α (suspectParams), as the live decider resolves it per decision.
  const cal = resolveCalibration(opts.calibration);
  const { beliefs, kills } = learnOnline(models, priors, { ...cal, suspect: suspectParams(cal, dial.alpha) }, opts.knownP);
  const estimates = learnEstimates(models, opts.estimates ?? 'history');
  const policies = opts.policies.map((policy) => ({
    policy,
    runs: models.map((m) =>
      replayRun(
        m,
        beliefs.get(m.run.runId) ?? new Map(),
        estimates.get(m.run.runId) ?? new Map(),
        { policy, dial, posteriorMode, ...(opts.fixedThreshold !== undefined ? { fixedThreshold: opts.fixedThreshold } : {}) },
        ctx,
        opts.keepDecisions ?? false,
      ),
    ),
  }));
  return {
    dial,
    posteriorMode,
    refit,
    usedRefitPriors: opts.useRefitPriors === true,
    estimates: opts.estimates ?? 'history',
    recorded: models.map((m) => ({ runId: m.run.runId, durationMs: m.recordedDurationMs, costNano: m.recordedCostNano })),
    policies,
    kills,
  };
}
