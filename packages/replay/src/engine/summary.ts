/**
 * Summaries of a replay (M9 stage 1, M11): per policy latency (mean, p50, p95, relative to
 * `never`), dollars per run, waste, speculations, hits, misses, the share of the oracle's
 * saving captured, the Brier score of P; and the headroom verdict: what an oracle would save on
 * these traces and what the EV rule captures of it at the given α and λ.
 */
import { nanoToUsd } from '@gambit/shared';
import { mean, quantile } from '../stats.js';
import type { ReplayResult } from './replay.js';
import type { PolicyName, RunOutcome } from './schedule.js';

export interface PolicySummary {
  readonly policy: PolicyName;
  readonly runs: number;
  readonly meanLatencyMs: number;
  readonly p50LatencyMs: number;
  readonly p95LatencyMs: number;
  /** mean latency / mean latency under `never` (p50 and p95 likewise). */
  readonly meanVsNever: number;
  readonly p50VsNever: number;
  readonly p95VsNever: number;
  readonly dollarsPerRun: number;
  readonly wastedUsd: number;
  readonly wastedUsdPerRun: number;
  readonly speculations: number;
  readonly hits: number;
  readonly misses: number;
  /** Misses billed from the finally-run operation (no `speculative` recorded; schedule.ts). */
  readonly missesPricedFromRecorded: number;
  /** (never − policy) / (never − oracle) of mean latency; null when the oracle saves nothing. */
  readonly oracleShareCaptured: number | null;
  /** Mean (P − outcome)² over decisions with a guess; null when there were none. */
  readonly brier: number | null;
}

export interface Headroom {
  readonly neverMeanLatencyMs: number;
  readonly oracleSavingMs: number;
  readonly oracleSavingPct: number;
  readonly evSavingMs: number;
  readonly evSavingPct: number;
  readonly evShareCaptured: number | null;
  readonly evExtraUsdPerRun: number;
  /** λ × seconds saved − extra dollars, per run. */
  readonly evNetValueUsdPerRun: number;
  readonly verdict: string;
}

export function latencies(runs: readonly RunOutcome[]): number[] {
  return runs.map((r) => r.durationMs);
}

function find(result: ReplayResult, p: PolicyName): RunOutcome[] | undefined {
  return result.policies.find((x) => x.policy === p)?.runs;
}

export function summarize(result: ReplayResult): PolicySummary[] {
  const never = find(result, 'never') ?? result.recorded.map((r) => ({ durationMs: r.durationMs }) as RunOutcome);
  const oracle = find(result, 'oracle');
  const nMean = mean(latencies(never));
  const nP50 = quantile(latencies(never), 0.5);
  const nP95 = quantile(latencies(never), 0.95);
  const oracleSaving = oracle === undefined ? undefined : nMean - mean(latencies(oracle));
  return result.policies.map(({ policy, runs }) => {
    const lat = latencies(runs);
    const m = mean(lat);
    const wasted = nanoToUsd(runs.reduce((s, r) => s + r.wasteNano, 0));
    const brierN = runs.reduce((s, r) => s + r.brierN, 0);
    return {
      policy,
      runs: runs.length,
      meanLatencyMs: m,
      p50LatencyMs: quantile(lat, 0.5),
      p95LatencyMs: quantile(lat, 0.95),
      meanVsNever: m / nMean,
      p50VsNever: quantile(lat, 0.5) / nP50,
      p95VsNever: quantile(lat, 0.95) / nP95,
      dollarsPerRun: nanoToUsd(runs.reduce((s, r) => s + r.costNano, 0)) / runs.length,
      wastedUsd: wasted,
      wastedUsdPerRun: wasted / runs.length,
      speculations: runs.reduce((s, r) => s + r.speculations, 0),
      hits: runs.reduce((s, r) => s + r.hits, 0),
      misses: runs.reduce((s, r) => s + r.misses, 0),
      missesPricedFromRecorded: runs.reduce((s, r) => s + r.missesPricedFromRecorded, 0),
      oracleShareCaptured: oracleSaving === undefined || oracleSaving <= 0 ? null : (nMean - m) / oracleSaving,
      brier: brierN === 0 ? null : runs.reduce((s, r) => s + r.brierSum, 0) / brierN,
    };
  });
}

/** M11: does speculation pay on these traces? Needs never, oracle and ev in the result. */
export function headroom(result: ReplayResult, summaries: readonly PolicySummary[] = summarize(result)): Headroom | undefined {
  const never = summaries.find((s) => s.policy === 'never');
  const oracle = summaries.find((s) => s.policy === 'oracle');
  const ev = summaries.find((s) => s.policy === 'ev');
  if (never === undefined || oracle === undefined || ev === undefined) return undefined;
  const oracleSavingMs = never.meanLatencyMs - oracle.meanLatencyMs;
  const evSavingMs = never.meanLatencyMs - ev.meanLatencyMs;
  const oracleSavingPct = (100 * oracleSavingMs) / never.meanLatencyMs;
  const evSavingPct = (100 * evSavingMs) / never.meanLatencyMs;
  const evExtraUsdPerRun = ev.dollarsPerRun - never.dollarsPerRun;
  const evNetValueUsdPerRun = (result.dial.lambdaUsdPerSec * evSavingMs) / 1000 - evExtraUsdPerRun;
  const share = oracleSavingMs > 0 ? evSavingMs / oracleSavingMs : null;
  let verdict: string;
  if (oracleSavingPct < 5)
    verdict = `little headroom: even an oracle that guessed right every time would save only ${oracleSavingPct.toFixed(1)}% of the run time here (M11); speculation is unlikely to be worth paying for on this workload.`;
  else if (evSavingMs <= 0)
    verdict = `headroom of ${oracleSavingPct.toFixed(1)}% exists, but at α=${result.dial.alpha} and λ=$${result.dial.lambdaUsdPerSec}/s the rule does not find it worth the tokens (it speculates on nothing that saves time); raise λ or α if latency is worth more to you.`;
  else if (evNetValueUsdPerRun >= 0)
    verdict = `speculation pays: the rule saves ${evSavingPct.toFixed(1)}% of run time (${((share ?? 0) * 100).toFixed(0)}% of the oracle's ${oracleSavingPct.toFixed(1)}%) for $${evExtraUsdPerRun.toFixed(6)} more per run, a net value of $${evNetValueUsdPerRun.toFixed(6)} per run at λ=$${result.dial.lambdaUsdPerSec}/s.`;
  else
    verdict = `speculation saves ${evSavingPct.toFixed(1)}% of run time but costs more than that time is worth at λ=$${result.dial.lambdaUsdPerSec}/s (net $${evNetValueUsdPerRun.toFixed(6)} per run); lower α to speculate less.`;
  return {
    neverMeanLatencyMs: never.meanLatencyMs,
    oracleSavingMs,
    oracleSavingPct,
    evSavingMs,
    evSavingPct,
    evShareCaptured: share,
    evExtraUsdPerRun,
    evNetValueUsdPerRun,
    verdict,
  };
}

const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${(ms / 1000).toFixed(2)}s`);
const fmtUsd = (usd: number) => `$${usd < 0.01 ? usd.toFixed(6) : usd.toFixed(4)}`;
const fmtPct = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(0)}%`);

/** The summary as an aligned text table. */
export function formatTable(summaries: readonly PolicySummary[]): string {
  const header = ['policy', 'runs', 'mean', 'p50', 'p95', 'vs never', '$/run', 'wasted $', 'spec', 'hits', 'misses', 'oracle share', 'Brier'];
  const rows = summaries.map((s) => [
    s.policy,
    String(s.runs),
    fmtMs(s.meanLatencyMs),
    fmtMs(s.p50LatencyMs),
    fmtMs(s.p95LatencyMs),
    s.meanVsNever.toFixed(3),
    fmtUsd(s.dollarsPerRun),
    fmtUsd(s.wastedUsd),
    String(s.speculations),
    String(s.hits),
    String(s.misses),
    fmtPct(s.oracleShareCaptured),
    s.brier === null ? '-' : s.brier.toFixed(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
