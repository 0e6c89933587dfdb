/**
 * Issue 9, drift launches, live (M5, M9; calibration/suspect.ts): real scheduler, worker and
 * estimator processes. A router class with 100 outcomes of history at 0.9 speculates at a
 * realistic λ (0.001-0.1 $/s) set so that the rule's threshold is P* = 0.75; then its hit rate
 * drops to 0.6, which no longer pays. Speculative launches after the onset must be ≤ 15 at
 * α = 0.5 and ≤ 30 at α = 1 (issue 9). The kill alone would launch until its alarm, about 30-40 outcomes at this
 * drop (bench/drift/launches.mjs); the decision's drift suspicion stops sooner, without a kill.
 *
 * The simulated router draws its output from a seed of run id and node id, so the hit sequence
 * after the onset is the same on every run of this test; what varies is only how fresh a
 * decision's class state is (the scheduler caches it for 500 ms).
 */
import { edgeClassId } from '@gambit/shared';
import { classKeys, controlKeys } from '@gambit/shared/redis';
import type { ServiceProcess } from '@gambit/testkit';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { http, newTenant, type RunView, type Stack, startStack, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';
import { waitFor } from './helpers.js';
import { estimatorReady, startEstimator } from './procs.js';

const P_STAR = 0.75;
/** Issue 9: launches after the onset, by α. */
const TOLERANCE: Record<number, number> = { 0.5: 15, 1: 30 };
const rate = (billing: number) => [
  { value: 'billing', weight: billing },
  { value: 'refund', weight: 10 - billing },
];

/** The router chain with an expensive answer: gpt-4o on a long prompt, so a miss costs real money. */
function workflow() {
  const base = routerChain('dlwf', 'billing', 'billing', { routerTtftMs: 300, downTtftMs: 300 });
  const context = Array.from({ length: 400 }, (_, i) => `Policy clause ${i}: refunds and billing disputes are handled per contract.`).join('\n');
  return {
    ...base,
    nodes: base.nodes.map((n) => (n.id === 'answer' ? { ...n, model: 'gpt-4o', prompt: `${context}\nAnswer the {{nodes.route.output}} question: {{inputs.q}}` } : n)),
  };
}

describe('issue 9 drift launches, live: scheduler, worker and estimator processes', () => {
  let stack: Stack;
  let estimator: ServiceProcess;
  let url: string;

  beforeAll(async () => {
    stack = await startStack(
      { kind: 'single', url: inject('redisUrl') },
      { label: 'drift-launch', schedulers: 1, workers: 1, schedulerEnv: { REQUIRE_ESTIMATOR_HEARTBEAT: 'true' } },
    );
    url = stack.urls[0] as string;
    estimator = startEstimator('estimator', inject('redisUrl'), stack.prefix, { ESTIMATOR_HEARTBEAT_MS: '500' });
    await estimatorReady(estimator);
    await waitFor(async () => (await http(url, 'GET', '/healthz')).body.heartbeatFresh === true, 15_000, 'scheduler sees the estimator');
  }, 120_000);
  afterAll(async () => {
    await estimator?.stop();
    await stack?.stop();
  });

  const wf = workflow();
  async function run(t: string, runId: string): Promise<RunView> {
    const r = await http(url, 'POST', '/v1/runs', { tenant: t, runId, workflow: wf, inputs: { q: runId } });
    if (r.status !== 201) throw new Error(`submit failed ${r.status}: ${JSON.stringify(r.body)}`);
    const v = await waitForRun(url, t, runId, 60_000);
    expect(v.status).toBe('succeeded');
    return v;
  }
  /** Runtime decisions of the answer node (the rule's own, not streaming's settled re-decisions). */
  const ruleDecisions = (v: RunView) => (v.decisions as RunView[]).filter((d) => d.node === 'answer' && d.phase === 'runtime');
  /** Speculative attempts launched on a runtime decision of the rule. */
  const ruleLaunches = (v: RunView) => {
    const ids = new Set(ruleDecisions(v).map((d) => d.decisionId));
    return (v.nodes.answer.attempts as RunView[]).filter((a) => a.kind === 'speculative' && ids.has(a.decisionId)).length;
  };
  const posterior = async (classId: string) => stack.redis.hgetall(classKeys({ prefix: stack.prefix }, classId).posterior);
  /** Waits until the estimator has applied every outcome of the class so far; returns its n. */
  async function settled(t: string, classId: string, views: RunView[], base: number): Promise<number> {
    let expected = base;
    await waitFor(
      async () => {
        const fresh = await Promise.all(views.map((v) => http<RunView>(url, 'GET', `/v1/runs/${t}/${v.runId}`)));
        expected = base + fresh.flatMap((r) => r.body.outcomes as RunView[]).filter((o) => o.edgeClass === classId && o.kind !== 'cancelled' && o.evidence !== false).length;
        return Number((await posterior(classId)).n ?? 0) === expected;
      },
      30_000,
      `estimator applied the outcomes of ${classId}`,
    );
    return expected;
  }

  interface Scenario {
    classId: string;
    historyOutcomes: number;
    lambda: number;
    launchesIn20RunsBefore: number;
    launchesAfterOnset: number;
    killedAfterOutcomes: number;
    perRun: Array<{ p: number; pStar: number; action: string; reason?: string }>;
  }

  /** History at 0.9, λ for P* = 0.75, 20 stationary runs, then the drop to 0.6 (see the header). */
  async function scenario(label: string, alpha: number, calibration: Record<string, unknown>): Promise<Scenario> {
    const t = newTenant(label);
    const put = (cfg: Record<string, unknown>) => http(url, 'PUT', `/v1/tenants/${t}/config`, { initialStage: 'online', calibration: { cooldownMs: 600_000, ...calibration }, ...cfg });
    expect((await put({ alpha: 1, lambdaUsdPerSec: 0.1 })).status).toBe(200);
    const classId = edgeClassId(t, 'dlwf', 'route', 'answer');
    await stack.redis.hset(controlKeys({ prefix: stack.prefix }).sim, `${t}/dlwf/route`, JSON.stringify(rate(9)));

    // History: 100 outcomes at 0.9, in waves of 10.
    const history: RunView[] = [];
    for (let i = 0; i < 100; i += 10) history.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => run(t, `h${i + j}`)))));
    const n0 = await settled(t, classId, history, 0);
    expect(Number((await posterior(classId)).hits) / n0).toBeGreaterThan(0.8);

    // λ at which P* = 0.75 at this α, from the decisions' own C_spec, C_fail and ΔT
    // (EV = P·L − (1 − P)·C_fail ≥ (1 − α)·C_spec ⟺ P ≥ (C_fail + (1 − α)·C_spec) / (L + C_fail)):
    // the median over the last 30 history decisions (ΔT varies with when a decision is made).
    const implied = history
      .slice(-30)
      .map((v) => ruleDecisions(v)[0])
      .map((d) => ((d.cFailUsd + (1 - alpha) * d.cSpecUsd) / P_STAR - d.cFailUsd) / d.deltaTSec)
      .sort((a, b) => a - b);
    const lambda = implied[Math.floor(implied.length / 2)] as number;
    expect(lambda).toBeGreaterThanOrEqual(0.001);
    expect(lambda).toBeLessThanOrEqual(0.1);
    expect((await put({ alpha, lambdaUsdPerSec: lambda })).status).toBe(200);
    // Past the tenant config cache, so the next decision uses the new dial.
    await new Promise((r) => setTimeout(r, 2100));

    // Still at 0.9: the class pays and speculates.
    let n = n0;
    let before = 0;
    for (let i = 0; i < 20; i++) {
      const v = await run(t, `s${i}`);
      before += ruleLaunches(v);
      n = await settled(t, classId, [v], n);
    }

    // Onset: 0.6. Runs one at a time, each outcome applied before the next run starts; until 5
    // runs after the kill, or 60 runs.
    await stack.redis.hset(controlKeys({ prefix: stack.prefix }).sim, `${t}/dlwf/route`, JSON.stringify(rate(6)));
    const n1 = n;
    let after = 0;
    let killedAfter = -1;
    const perRun: Scenario['perRun'] = [];
    for (let i = 0; i < 60 && (killedAfter < 0 || n - n1 < killedAfter + 5); i++) {
      const v = await run(t, `d${i}`);
      after += ruleLaunches(v);
      const d = ruleDecisions(v)[0];
      // The decision's own break-even: P* = (threshold + C_fail) / (L + C_fail).
      const pStar = (d.thresholdUsd + d.cFailUsd) / (d.lUsd + d.cFailUsd);
      perRun.push({ p: Math.round(d.p * 1000) / 1000, pStar: Math.round(pStar * 1000) / 1000, action: d.action, ...(d.reason === undefined ? {} : { reason: d.reason }) });
      n = await settled(t, classId, [v], n);
      if (killedAfter < 0 && (await posterior(classId)).stage === 'killed') killedAfter = n - n1;
    }
    return { classId, historyOutcomes: n0, lambda, launchesIn20RunsBefore: before, launchesAfterOnset: after, killedAfterOutcomes: killedAfter, perRun };
  }

  it('≤ 15 (α = 0.5) and ≤ 30 (α = 1) speculative launches after a 0.9 → 0.6 drop at a λ where 0.6 no longer pays; fewer than the kill alone on the same outcomes', async () => {
    // The same run ids, so the same hit sequence: with drift suspicion (the default) at α = 0.5
    // and at α = 1, and with it off (`suspect.drop = 0`) at α = 0.5, where only the kill stops
    // speculation.
    const [half, one, killOnly] = await Promise.all([scenario('dlaunch', 0.5, {}), scenario('dlaunch1', 1, {}), scenario('dkill', 0.5, { suspect: { drop: 0 } })]);
    console.info(JSON.stringify({ driftLaunches: { pStar: P_STAR, alpha05: half, alpha1: one, killOnlyAlpha05: { ...killOnly, perRun: undefined } } }));
    for (const s of [half, one, killOnly]) {
      expect(s.launchesIn20RunsBefore).toBeGreaterThanOrEqual(15);
      // The set-up holds: at the decisions after the onset, 0.9 pays and 0.6 does not.
      const ps = s.perRun.map((r) => r.pStar).sort((a, b) => a - b);
      const median = ps[Math.floor(ps.length / 2)] as number;
      expect(median).toBeGreaterThan(0.65);
      expect(median).toBeLessThan(0.85);
    }
    expect(half.launchesAfterOnset).toBeLessThanOrEqual(TOLERANCE[0.5] as number);
    expect(one.launchesAfterOnset).toBeLessThanOrEqual(TOLERANCE[1] as number);
    expect(half.launchesAfterOnset).toBeLessThan(killOnly.launchesAfterOnset);
    // Speculation stopped before the kill: a WAIT below the threshold while the class was online.
    const firstWait = half.perRun.findIndex((r) => r.action === 'WAIT');
    expect(half.perRun[firstWait]?.reason).toBe('below_threshold');
    // The class view says why: the class is suspect, its segment the post-drop outcomes.
    const view = await http<RunView>(url, 'GET', `/v1/classes/${encodeURIComponent(half.classId)}`);
    expect(view.status).toBe(200);
    expect(view.body.suspicion).toMatchObject({ suspect: true });
    expect(view.body.suspicion.since).toBeGreaterThan(5);
  }, 400_000);
});
