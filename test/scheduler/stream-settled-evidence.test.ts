/**
 * M5 and M8 (docs/method.md, "Learning never blocked"): a downstream WAITs at run time on a
 * guess of its router upstream (the class's P is far below the threshold); the router's stream
 * then settles the label, and the stream's re-decision speculates on it. The speculation's edge
 * "guess" is the settled label, known, not predicted: its hit must carry the seconds it saved
 * (value) and no evidence, and the guess the class really made (the runtime WAIT's) must be
 * scored exactly once. Before this was fixed the certain hit was counted in the posterior and
 * the WAIT's wrong guess was never scored.
 *
 * Real parts throughout, on a real redis-server: the scheduler's RunEngine (decisions, streaming
 * re-decision, confirmation, outcome settlement) with the real control plane, run scripts and
 * fair dispatch; the test plays the worker with the real attempt scripts; the estimator's own
 * OutcomeProcessor applies the published outcomes with its Lua script; the chaos checker reads
 * the resulting history.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, collectHistory } from '@gambit/chaos/campaign-api';
import { ControlPlane, createPriceTable, defineEstimatorScripts, edgeClassId, ManualClock, type Outcome, silentLogger } from '@gambit/shared';
import {
  classKeys,
  controlKeys,
  createRun,
  defineAttemptScripts,
  defineRunScripts,
  FairDispatcher,
  finishAttempt,
  initialNodeState,
  type KeySpace,
  startAttempt,
  tenantKeys,
} from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { OutcomeProcessor } from '../../services/estimator/src/processor.js';
import { TenantConfigs } from '../../services/estimator/src/tenant-config.js';
import { LimitStore } from '../../services/scheduler/src/limits.js';
import { PredictorSet } from '../../services/scheduler/src/predictors/index.js';
import { RetentionPolicy } from '../../services/scheduler/src/retention.js';
import { TenantStore } from '../../services/scheduler/src/tenants.js';
import { ControlPlaneAdapter } from '../../services/scheduler/src/engine/control.js';
import { type EngineDeps, RunEngine } from '../../services/scheduler/src/engine/engine.js';
import { Outbox } from '../../services/scheduler/src/engine/outbox.js';
import { loadRun } from '../../services/scheduler/src/engine/run-view.js';
import { onPartial } from '../../services/scheduler/src/engine/streaming.js';
import { opQueues } from '../worker/helpers.js';

const url = inject('redisUrl');
const redis = new Redis(url, { maxRetriesPerRequest: null });
defineRunScripts(redis);
defineAttemptScripts(redis);
defineEstimatorScripts(redis);
const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  while (closers.length > 0) await closers.pop()?.();
  await redis.quit();
});

const BILLING = 'billing: route this conversation to the billing team for a follow-up call tomorrow';
const REFUND = 'refund: send this conversation to the refunds team and close the ticket after review';
const TENANT = 'acme';

const workflow = {
  name: 'settled',
  nodes: [
    {
      id: 'u',
      kind: 'llm',
      provider: 'simulated',
      model: 'gpt-4o-mini',
      prompt: 'Classify {{inputs.q}}',
      expectedOutputTokens: 20,
      maxTokens: 64,
      simulate: { outcomes: [{ value: BILLING, weight: 1 }, { value: REFUND, weight: 1 }], ttftMs: 300, tokensPerSec: 10 },
    },
    {
      id: 'd',
      kind: 'llm',
      provider: 'simulated',
      model: 'gpt-4o-mini',
      prompt: 'Reply for {{nodes.u.output}}',
      expectedOutputTokens: 4,
      maxTokens: 16,
      simulate: { output: 'done', ttftMs: 300, tokensPerSec: 100 },
    },
  ],
  // The class's predictor guesses the refund route; the router really answers billing.
  edges: [{ from: 'u', to: 'd', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: REFUND } }],
};

/** The scheduler's engine in this process, on real Redis, with the real control plane. */
async function scheduler(ks: KeySpace, clock: ManualClock) {
  const queues = opQueues(redis, ks);
  closers.push(() => queues.close());
  const fair = new FairDispatcher(redis, ks, queues, silentLogger);
  const cp = new ControlPlane(url, ks, clock, silentLogger);
  closers.push(() => cp.close());
  await cp.ready();
  const tenants = new TenantStore(redis, ks, { alpha: 1, lambdaUsdPerSec: 0.01, initialStage: 'online' }, 0);
  const limits = new LimitStore(redis, ks, {
    maxPromptBytes: 100_000,
    maxTokens: 10_000,
    maxNodes: 50,
    maxEdges: 100,
    maxFanOut: 50,
    ratePerSec: 100,
    burst: 100,
    maxInFlightRuns: 100,
    opTimeoutMs: 60_000,
    maxRetentionSec: 3600,
    maxRunsKept: 1000,
  });
  const deps: EngineDeps = {
    redis,
    ks,
    outbox: new Outbox(redis, ks, fair, 3, silentLogger),
    fair,
    priceTable: createPriceTable(),
    predictors: new PredictorSet(),
    control: new ControlPlaneAdapter(cp, false),
    tenants,
    clock,
    log: silentLogger,
    retention: new RetentionPolicy(redis, ks, tenants, limits),
    limits,
  };
  return { deps, engine: new RunEngine(deps) };
}

/** The worker's side of one attempt: started now, finished `ms` later with `output`. */
async function work(ks: KeySpace, clock: ManualClock, runId: string, attemptId: string, epoch: number) {
  const started = await startAttempt(redis, ks, { tenant: TENANT, runId, attemptId, epoch, workerId: 'w1', nowMs: clock.nowMs() });
  if (started.code !== 'OK') throw new Error(`attempt ${attemptId} did not start: ${started.code}`);
  return async (output: string, ms: number) => {
    clock.advance(ms);
    const r = await finishAttempt(redis, ks, {
      tenant: TENANT,
      runId,
      attemptId,
      epoch,
      tryNo: started.tries,
      outcome: 'ok',
      output,
      usage: { inputTokens: 8, cachedInputTokens: 0, outputTokens: 20 },
      usageEstimated: false,
      costNanoUsd: 2_000,
      finishedAtMs: clock.nowMs(),
    });
    if (r.code !== 'OK') throw new Error(`attempt ${attemptId} did not finish: ${r.code}`);
  };
}

async function published(ks: KeySpace): Promise<Array<[string, string[]]>> {
  return (await redis.xrange(controlKeys(ks).outcomes, '-', '+')) as Array<[string, string[]]>;
}

describe('M5/M8: a stream-settled re-decision is value, not evidence; the WAIT it overturned is scored', () => {
  it('the settled hit books its seconds saved without moving the posterior, and the runtime guess is scored once', async () => {
    const ks = { prefix: uniquePrefix('settled-evidence') };
    const clock = new ManualClock(5_000_000);
    const runId = 'r1';
    const classId = edgeClassId(TENANT, workflow.name, 'u', 'd');
    // The class's P is about 1e-6: at λ = $0.01/s the runtime rule WAITs below the threshold.
    await redis.hset(tenantKeys(ks, TENANT).config, 'priors', JSON.stringify({ classes: { [classId]: { a: 1, b: 1e6 } } }));
    const { deps, engine } = await scheduler(ks, clock);
    await createRun(redis, ks, {
      tenant: TENANT,
      runId,
      header: { tenant: TENANT, runId, workflowName: workflow.name, workflow: JSON.stringify(workflow), inputs: JSON.stringify({ q: 'my bill' }), status: 'running', speculation: 1, createdAtMs: clock.nowMs() },
      nodes: { u: initialNodeState(), d: initialNodeState() },
      planDecisions: [],
    });

    // u launches; once it runs, d is decided at run time: WAIT below the threshold, guess kept.
    await engine.reconcile(TENANT, runId);
    let s = await loadRun(redis, ks, TENANT, runId);
    const uAuth = s?.nodes.get('u')?.auth as string;
    const finishU = await work(ks, clock, runId, uAuth, s?.attempts.get(uAuth)?.epoch as number);
    clock.advance(50);
    await engine.reconcile(TENANT, runId);
    s = await loadRun(redis, ks, TENANT, runId);
    expect(s?.nodes.get('d')?.shadow).toMatchObject({ assumed: { u: REFUND }, r: 'below_threshold' });
    expect(s?.nodes.get('d')?.spec).toBeUndefined();

    // u's stream settles the label (billing): the stream re-decision speculates on it.
    clock.advance(200);
    await onPartial(deps, engine, { type: 'partial', tenant: TENANT, runId, nodeId: 'u', attemptId: uAuth, text: 'billing: route', seq: 1 });
    s = await loadRun(redis, ks, TENANT, runId);
    const spec = s?.nodes.get('d')?.spec;
    expect(spec).toMatchObject({ assumed: { u: BILLING }, st: { u: 1 } });
    const specAttempt = spec?.a as string;

    // The speculation runs and finishes first; then u ends with the settled label.
    const finishSpec = await work(ks, clock, runId, specAttempt, s?.attempts.get(specAttempt)?.epoch as number);
    await finishSpec('done', 400);
    await finishU(BILLING, 1_500);
    await engine.reconcile(TENANT, runId);
    s = await loadRun(redis, ks, TENANT, runId);
    expect(s?.header.status).toBe('succeeded');
    expect(s?.nodes.get('d')?.source).toBe('speculative');

    const entries = await published(ks);
    const outcomes = entries.map(([, f]) => JSON.parse(f[1] as string) as Outcome);
    // The settled edge's hit: its value (seconds saved), no evidence.
    const hit = outcomes.find((o) => o.kind === 'hit');
    expect(hit).toMatchObject({ outcomeId: `${runId}:${specAttempt}:u`, edgeClass: classId, evidence: false, decisionId: spec?.d });
    expect(hit?.secondsSaved).toBeGreaterThan(0);
    // The class's real guess (refund) is scored once, as the runtime WAIT's shadow miss.
    const scored = outcomes.filter((o) => o.kind === 'shadow_hit' || o.kind === 'shadow_miss');
    expect(scored).toHaveLength(1);
    expect(scored[0]).toMatchObject({ outcomeId: `${runId}:shadow:d:u`, kind: 'shadow_miss', waitReason: 'below_threshold', edgeClass: classId });
    expect(scored[0]?.evidence).toBeUndefined();
    expect(outcomes).toHaveLength(2);

    // The estimator applies them: the posterior learns one miss and no hit; the stage's value
    // counters carry the hit's seconds saved.
    const tenants = new TenantConfigs(redis, ks, clock, silentLogger, { defaultLambdaUsdPerSec: 0.01, cacheMs: 0 });
    const processor = new OutcomeProcessor(redis, ks, clock, silentLogger, tenants, { estimatorId: 'e1', autoGlobal: { classCount: 100, windowMs: 60_000 }, fallbackPrior: { a: 1, b: 1 } });
    expect(await processor.processBatch(entries)).toHaveLength(2);
    const post = await redis.hgetall(classKeys(ks, classId).posterior);
    expect({ hits: post.hits, misses: post.misses, n: post.n, stageN: post.stageN }).toEqual({ hits: '0', misses: '1', n: '1', stageN: '1' });
    expect(Number(post.b) - Number(post.b0)).toBe(1);
    expect(Number(post.a) - Number(post.a0)).toBe(0);
    expect(Number(post.stageRealN)).toBe(1);
    expect(Number(post.stageSavedMs)).toBe(Math.round((hit?.secondsSaved ?? 0) * 1000));
    // The drift window saw the miss alone.
    expect(await redis.lrange(classKeys(ks, classId).window, 0, -1)).toEqual(['0']);

    // Idempotent: a redelivery and another reconcile count nothing twice.
    expect(await processor.processBatch(entries)).toHaveLength(2);
    expect(processor.counters).toMatchObject({ applied: 2, duplicates: 2, dead: 0 });
    await engine.reconcile(TENANT, runId);
    expect(await published(ks)).toHaveLength(2);
    expect(await redis.hgetall(classKeys(ks, classId).posterior)).toEqual(post);

    // The chaos checker's posterior_once agrees with the estimator on this history, and would
    // catch an estimator that counted the settled hit as evidence.
    const effectDir = mkdtempSync(join(tmpdir(), 'settled-evidence-'));
    try {
      const h = await collectHistory({ redis, prefix: ks.prefix, tenant: TENANT, runIds: [runId], effectDir, api: async () => undefined });
      const posteriorOnce = (x: typeof h) => checkHistory(x).violations.filter((v) => v.invariant === 'posterior_once');
      expect(posteriorOnce(h)).toEqual([]);
      const doctored = structuredClone(h);
      for (const o of doctored.runs[0]?.outcomes ?? []) delete o.evidence;
      expect(posteriorOnce(doctored).map((v) => v.detail)).toEqual([`class ${classId}: posterior hits/misses 0/1, outcomes say 1/1`]);
    } finally {
      rmSync(effectDir, { recursive: true, force: true });
    }
  });
  it('a stream re-decision that still WAITs (a join whose other guess is below the threshold) keeps the runtime guesses to score', async () => {
    const ks = { prefix: uniquePrefix('settled-evidence-join') };
    const clock = new ManualClock(6_000_000);
    const runId = 'r2';
    const wf = {
      name: 'settledjoin',
      nodes: [
        workflow.nodes[0],
        { ...workflow.nodes[0], id: 'v', prompt: 'Look up {{inputs.q}}', simulate: { output: 'y', ttftMs: 300, tokensPerSec: 10 } },
        { ...workflow.nodes[1], prompt: 'Reply for {{nodes.u.output}} {{nodes.v.output}}' },
      ],
      edges: [workflow.edges[0], { from: 'v', to: 'd', type: 'passthrough', predictor: { kind: 'fixed', value: 'y' } }],
    };
    const cu = edgeClassId(TENANT, wf.name, 'u', 'd');
    const cv = edgeClassId(TENANT, wf.name, 'v', 'd');
    await redis.hset(tenantKeys(ks, TENANT).config, 'priors', JSON.stringify({ classes: { [cu]: { a: 1, b: 1e6 }, [cv]: { a: 1, b: 1e6 } } }));
    const { deps, engine } = await scheduler(ks, clock);
    await createRun(redis, ks, {
      tenant: TENANT,
      runId,
      header: { tenant: TENANT, runId, workflowName: wf.name, workflow: JSON.stringify(wf), inputs: JSON.stringify({ q: 'my bill' }), status: 'running', speculation: 1, createdAtMs: clock.nowMs() },
      nodes: { u: initialNodeState(), v: initialNodeState(), d: initialNodeState() },
      planDecisions: [],
    });
    await engine.reconcile(TENANT, runId);
    let s = await loadRun(redis, ks, TENANT, runId);
    const uAuth = s?.nodes.get('u')?.auth as string;
    const vAuth = s?.nodes.get('v')?.auth as string;
    const finishU = await work(ks, clock, runId, uAuth, s?.attempts.get(uAuth)?.epoch as number);
    const finishV = await work(ks, clock, runId, vAuth, s?.attempts.get(vAuth)?.epoch as number);
    clock.advance(50);
    await engine.reconcile(TENANT, runId);
    s = await loadRun(redis, ks, TENANT, runId);
    const runtimeShadow = s?.nodes.get('d')?.shadow;
    expect(runtimeShadow).toMatchObject({ assumed: { u: REFUND, v: 'y' }, r: 'below_threshold' });

    // u's stream settles billing; v's guess is still far below the threshold: the stream WAITs.
    clock.advance(200);
    await onPartial(deps, engine, { type: 'partial', tenant: TENANT, runId, nodeId: 'u', attemptId: uAuth, text: 'billing: route', seq: 1 });
    s = await loadRun(redis, ks, TENANT, runId);
    expect(s?.nodes.get('d')?.claims.stream).toBe(1);
    expect(s?.nodes.get('d')?.spec).toBeUndefined();
    // The runtime WAIT's guesses stay to be scored (the stream's WAIT knew u, it did not guess it).
    expect(s?.nodes.get('d')?.shadow).toEqual(runtimeShadow);

    await finishV('y', 100);
    await finishU(BILLING, 1_500);
    await engine.reconcile(TENANT, runId);
    const outcomes = (await published(ks)).map(([, f]) => JSON.parse(f[1] as string) as Outcome);
    expect(outcomes.map((o) => [o.outcomeId, o.kind, o.decisionId]).sort()).toEqual([
      [`${runId}:shadow:d:u`, 'shadow_miss', runtimeShadow?.d],
      [`${runId}:shadow:d:v`, 'shadow_hit', runtimeShadow?.d],
    ]);
  });
});
