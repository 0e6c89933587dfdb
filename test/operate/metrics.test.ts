/**
 * The metrics agree with the run records (issue 12 item 1, "done when"): after a workload of
 * hits and misses over two schedulers, two workers and an estimator (real processes, one Redis),
 * every service's /metrics is scraped and the counters are checked against what the API's run
 * records say: outcomes by kind, waste to the nano-dollar, seconds saved, decisions by action,
 * dollars billed per attempt kind to the nano-dollar, tokens, runs ended, and the estimator's
 * λ-valued savings.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceProcess } from '@gambit/testkit';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, getRun, type RunView, type Stack, startStack, submitRun, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';
import { estimatorReady, startEstimator } from '../estimator/procs.js';
import { opsPort, scrape, sum, until } from './helpers.js';
import { ROOT } from './manifests.js';

const LAMBDA = 10;

/** The PromQL of infra/prometheus/alerts.yml and of the Grafana dashboard. */
function queriedExpressions(): string[] {
  const alerts = parse(readFileSync(join(ROOT, 'infra', 'prometheus', 'alerts.yml'), 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
  const dash = JSON.parse(readFileSync(join(ROOT, 'infra', 'grafana', 'dashboards', 'gambit.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  return [...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)), ...dash.panels.flatMap((p) => p.targets.map((t) => t.expr))];
}

/** Metric names in a PromQL expression (label matchers and `by (...)` lists removed). */
function metricNames(expr: string): string[] {
  const bare = expr.replace(/\{[^}]*\}/g, '').replace(/\b(by|without)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/\b(?:gambit|gen_ai|http_server)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}
const RUNS_PER_KIND = 4;

interface Outcome {
  kind: string;
  wasteUsd: number;
  secondsSaved: number;
}
interface Attempt {
  kind: string;
  costNanoUsd: number;
  startedAtMs?: number;
  finishedAtMs?: number;
  status: string;
  usage?: { inputTokens: number; outputTokens: number };
}

describe('metrics against the run records (2 schedulers, 2 workers, 1 estimator)', () => {
  let stack: Stack;
  let estimator: ServiceProcess | undefined;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'metrics', schedulers: 2, workers: 2 });
    estimator = startEstimator('metrics-est', inject('redisUrl'), stack.prefix);
    await estimatorReady(estimator);
  }, 120_000);
  afterAll(async () => {
    await estimator?.stop(8_000);
    await stack?.stop();
  });

  it('counters equal the records: hits, misses, waste and spend to the nano-dollar, decisions, runs', async () => {
    const [u0, u1] = stack.urls as [string, string];
    const tenant = await eagerTenant(u0, 'metrics', { lambdaUsdPerSec: LAMBDA, budgetUsd: 1000 });
    const submitted: Array<{ url: string; runId: string }> = [];
    for (let i = 0; i < RUNS_PER_KIND; i++) {
      for (const [wf, guess] of [
        ['mhit', 'billing'],
        ['mmiss', 'refund'],
      ] as const) {
        const url = submitted.length % 2 === 0 ? u0 : u1;
        const r = await submitRun(url, { tenant, workflow: routerChain(wf, 'billing', guess, { routerTtftMs: 200, downTtftMs: 800 }), inputs: { q: `${wf}-${i}` } });
        expect(r.status).toBe(201);
        submitted.push({ url, runId: r.body.runId as string });
      }
    }
    for (const s of submitted) expect((await waitForRun(s.url, tenant, s.runId)).status).toBe('succeeded');
    // Settled: every attempt billed for good and every speculation scored (a miss is scored once
    // its cancelled attempt's usage is final).
    const views: RunView[] = await until(
      'runs settled',
      async () => {
        const vs = await Promise.all(submitted.map(async (s) => (await getRun(s.url, tenant, s.runId)).body));
        for (const v of vs) {
          const attempts = Object.values(v.nodes).flatMap((n) => (n as { attempts: Attempt[] }).attempts);
          // One edge per workflow: each speculative attempt is scored once (hit, miss or cancelled).
          const speculated = attempts.filter((a) => a.kind === 'speculative').length;
          const final = (a: Attempt) => ['succeeded', 'failed', 'cancelled', 'superseded'].includes(a.status) && (a.finishedAtMs !== undefined || a.startedAtMs === undefined);
          // Thrown (not returned) so that a timeout says which run is not settled and why.
          if (!attempts.every(final) || v.outcomes.length < speculated)
            throw new Error(`run ${v.runId}: attempts ${JSON.stringify(attempts.map((a) => [a.status, a.startedAtMs, a.finishedAtMs]))}, ${v.outcomes.length} outcomes for ${speculated} speculations`);
        }
        return vs;
      },
      30_000,
      200,
    );
    const outcomes: Outcome[] = views.flatMap((v) => v.outcomes);
    const attempts: Attempt[] = views.flatMap((v) => Object.values(v.nodes).flatMap((n) => (n as { attempts: Attempt[] }).attempts));
    const decisions: Array<{ action: string; reason: string }> = views.flatMap((v) => v.decisions);
    const count = (kind: string) => outcomes.filter((o) => o.kind === kind).length;
    // The workload is meaningful: it has both hits and misses, and money on both kinds of attempt.
    expect(count('hit')).toBeGreaterThan(0);
    expect(count('miss')).toBeGreaterThan(0);

    const schedPorts = await Promise.all(stack.schedulers.map((p) => opsPort(p)));
    const workerPorts = await Promise.all(stack.workers.map((p) => opsPort(p)));
    const estPort = await opsPort(estimator as ServiceProcess);
    // The estimator consumes outcomes asynchronously: wait until it has applied every one.
    await until('estimator applied every outcome', async () => (sum(await scrape(estPort), 'gambit_estimator_outcomes_applied_total') === outcomes.length ? true : undefined), 20_000, 200);
    const schedTexts = await Promise.all(schedPorts.map((p) => scrape(p)));
    const sched = schedTexts.join('\n');
    const work = (await Promise.all(workerPorts.map((p) => scrape(p)))).join('\n');
    const est = await scrape(estPort);

    for (const kind of ['hit', 'miss', 'cancelled', 'shadow_hit', 'shadow_miss']) expect(sum(sched, 'gambit_speculation_outcomes_total', { gambit_outcome_kind: kind }), kind).toBe(count(kind));
    const wasteNano = outcomes.reduce((s, o) => s + Math.round(o.wasteUsd * 1e9), 0);
    expect(wasteNano).toBeGreaterThan(0);
    expect(sum(sched, 'gambit_speculation_waste_nano_usd_total')).toBe(wasteNano);
    expect(sum(sched, 'gambit_speculation_saved_seconds_total')).toBeCloseTo(
      outcomes.reduce((s, o) => s + o.secondsSaved, 0),
      9,
    );
    for (const action of ['SPECULATE', 'WAIT'])
      expect(sum(sched, 'gambit_decisions_total', { gambit_decision_action: action }), action).toBe(decisions.filter((d) => d.action === action).length);
    expect(sum(sched, 'gambit_run_duration_count', { gambit_run_status: 'succeeded' })).toBe(submitted.length);

    for (const kind of ['authoritative', 'speculative']) {
      const nano = attempts.filter((a) => a.kind === kind).reduce((s, a) => s + a.costNanoUsd, 0);
      expect(nano, kind).toBeGreaterThan(0);
      expect(sum(work, 'gambit_spend_nano_usd_total', { gambit_attempt_kind: kind }), kind).toBe(nano);
    }
    const apiTotalNano = views.reduce((s, v) => s + v.dollars.total.nanoUsd, 0);
    expect(sum(work, 'gambit_spend_nano_usd_total')).toBe(apiTotalNano);
    expect(sum(work, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' })).toBe(attempts.reduce((s, a) => s + (a.usage?.inputTokens ?? 0), 0));
    expect(sum(work, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' })).toBe(attempts.reduce((s, a) => s + (a.usage?.outputTokens ?? 0), 0));
    expect(sum(work, 'gen_ai_client_operation_duration_count', { gen_ai_operation_name: 'chat' })).toBeGreaterThanOrEqual(attempts.length);

    expect(sum(est, 'gambit_speculation_saved_nano_usd_total')).toBe(outcomes.reduce((s, o) => s + Math.round(o.secondsSaved * LAMBDA * 1e9), 0));
    expect(sum(est, 'gambit_estimator_entries_total', { gambit_estimator_result: 'applied' })).toBe(outcomes.length);
    // Gauges are there: queues (every scheduler reports the same Redis), classes, stream lag.
    expect(sched).toContain('gambit_queue_jobs{gambit_queue="ops",gambit_queue_state="waiting"');
    expect(sum(est, 'gambit_classes_total')).toBeGreaterThanOrEqual(2);
    expect(sum(est, 'gambit_estimator_stream_lag')).toBe(0);
    expect(est).toContain('gambit_class_posterior_mean{');
    // Redis-derived gauges: each scheduler reports the same value (aggregate with max, not sum).
    expect(Math.max(...schedTexts.map((t) => sum(t, 'gambit_tenant_budget_limit_nano_usd', { gambit_tenant: tenant })))).toBe(1000 * 1e9);

    // Every metric the alerts and the dashboard query is one the services export.
    const exported = new Set([sched, work, est].flatMap((t) => t.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0])));
    for (const expr of queriedExpressions())
      for (const name of metricNames(expr)) expect(exported.has(name), `${name} (in ${expr}) is exported`).toBe(true);
  });
});
