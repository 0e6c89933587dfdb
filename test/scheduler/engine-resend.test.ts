/**
 * The scheduler's engine when a script call's reply is lost (docs/runtime.md "Re-sent commands"):
 * its command connection keeps ioredis's default autoResendUnfulfilledCommands, so a call whose
 * reply was lost in a reconnect (CLIENT KILL, a Redis restart, a network cut) is sent again and
 * Redis executes it a second time. Here the engine's connection goes through the TCP proxy of
 * test/estimator/tcp-proxy.ts, which swallows the reply of one script's first call (its source,
 * sent whole by EVAL, carries the marker) and cuts the connection; the engine must carry on as
 * if the reply had arrived. Real Redis, the real engine, run scripts and fair dispatch; the test
 * plays the worker with the real attempt scripts.
 */
import { ControlPlane, createPriceTable, ManualClock, silentLogger } from '@gambit/shared';
import {
  createRun,
  createSpecAttempt,
  defineAttemptScripts,
  defineRunScripts,
  FairDispatcher,
  finishAttempt,
  initialNodeState,
  type KeySpace,
  runKeys,
  startAttempt,
  tenantKeys,
} from '@gambit/shared/redis';
import { uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ControlPlaneAdapter } from '../../services/scheduler/src/engine/control.js';
import { type EngineDeps, RunEngine } from '../../services/scheduler/src/engine/engine.js';
import { Outbox } from '../../services/scheduler/src/engine/outbox.js';
import { loadRun } from '../../services/scheduler/src/engine/run-view.js';
import { LimitStore } from '../../services/scheduler/src/limits.js';
import { PredictorSet } from '../../services/scheduler/src/predictors/index.js';
import { RetentionPolicy } from '../../services/scheduler/src/retention.js';
import { TenantStore } from '../../services/scheduler/src/tenants.js';
import { startTcpProxy, type TcpProxy } from '../estimator/tcp-proxy.js';
import { opQueues } from '../worker/helpers.js';

const url = inject('redisUrl');
const direct = new Redis(url, { maxRetriesPerRequest: null });
defineRunScripts(direct);
defineAttemptScripts(direct);
let proxy: TcpProxy;
const closers: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  const u = new URL(url);
  proxy = await startTcpProxy(u.hostname, Number(u.port));
});
afterAll(async () => {
  while (closers.length > 0) await closers.pop()?.();
  await direct.quit();
  await proxy.close();
});

const TENANT = 'acme';
const llm = (id: string, prompt: string) => ({ id, kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini', prompt, expectedOutputTokens: 4, maxTokens: 16 });
const workflow = { name: 'chain', nodes: [llm('a', 'first {{inputs.q}}'), llm('b', 'then {{nodes.a.output}}')], edges: [{ from: 'a', to: 'b', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'x' } }] };

/**
 * A scheduler's engine whose command connection goes through the proxy: a client of its own (the
 * scripts it has sent whole are per client, so the marked script's first call is an EVAL).
 */
async function scheduler(ks: KeySpace, clock: ManualClock): Promise<RunEngine> {
  // The scheduler's command connection's options (services/scheduler/src/main.ts): re-send on.
  const cmd = new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: null, enableAutoPipelining: true, retryStrategy: () => 20 });
  closers.push(async () => cmd.disconnect());
  const queues = opQueues(direct, ks);
  closers.push(() => queues.close());
  const fair = new FairDispatcher(cmd, ks, queues, silentLogger);
  const cp = new ControlPlane(url, ks, clock, silentLogger);
  closers.push(() => cp.close());
  await cp.ready();
  const tenants = new TenantStore(cmd, ks, { alpha: 1, lambdaUsdPerSec: 0.01, initialStage: 'online' }, 0);
  const limits = new LimitStore(cmd, ks, {
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
    redis: cmd,
    ks,
    outbox: new Outbox(cmd, ks, fair, 3, silentLogger),
    fair,
    priceTable: createPriceTable(),
    predictors: new PredictorSet(),
    control: new ControlPlaneAdapter(cp, false),
    tenants,
    clock,
    log: silentLogger,
    retention: new RetentionPolicy(cmd, ks, tenants, limits),
    limits,
  };
  await cmd.ping();
  return new RunEngine(deps);
}

/** The worker's side of the node's current authoritative attempt: started and finished now. */
async function work(ks: KeySpace, clock: ManualClock, runId: string, nodeId: string): Promise<void> {
  const s = await loadRun(direct, ks, TENANT, runId);
  const attemptId = s?.nodes.get(nodeId)?.auth as string;
  const epoch = s?.attempts.get(attemptId)?.epoch as number;
  const started = await startAttempt(direct, ks, { tenant: TENANT, runId, attemptId, epoch, workerId: 'w1', nowMs: clock.nowMs() });
  if (started.code !== 'OK') throw new Error(`attempt ${attemptId} did not start: ${started.code}`);
  clock.advance(100);
  const usage = { inputTokens: 8, cachedInputTokens: 0, outputTokens: 4 };
  const r = await finishAttempt(direct, ks, { tenant: TENANT, runId, attemptId, epoch, tryNo: started.tries, outcome: 'ok', output: `out-${nodeId}`, usage, usageEstimated: false, costNanoUsd: 2_000, finishedAtMs: clock.nowMs() });
  if (r.code !== 'OK') throw new Error(`attempt ${attemptId} did not finish: ${r.code}`);
}

/** A new run of the chain, its first node launched (no marker armed) and finished by the worker. */
async function started(marker: string | undefined, speculate = false): Promise<{ ks: KeySpace; clock: ManualClock; engine: RunEngine; runId: string }> {
  const ks = { prefix: uniquePrefix('engresend') };
  const clock = new ManualClock(5_000_000);
  const runId = 'r1';
  const engine = await scheduler(ks, clock);
  await createRun(direct, ks, {
    tenant: TENANT,
    runId,
    header: { tenant: TENANT, runId, workflowName: workflow.name, workflow: JSON.stringify(workflow), inputs: JSON.stringify({ q: 'q' }), status: 'running', speculation: 0, createdAtMs: clock.nowMs() },
    nodes: { a: initialNodeState(), b: initialNodeState() },
    planDecisions: [],
  });
  await engine.reconcile(TENANT, runId);
  expect((await loadRun(direct, ks, TENANT, runId))?.nodes.get('a')?.state).toBe('running');
  if (speculate) {
    // A speculation of b on a's output, as decisions.ts launches one (its decision not a SPECULATE
    // record, so the re-decision leaves it alone); its job is played by the test.
    const spec = await createSpecAttempt(direct, ks, {
      tenant: TENANT,
      runId,
      nodeId: 'b',
      expectedEpoch: 0,
      claim: 'runtime',
      attemptId: 'b.s1',
      attemptJson: JSON.stringify({ attemptId: 'b.s1', nodeId: 'b', kind: 'speculative', epoch: 1, status: 'queued', assumed: { a: 'out-a' }, costNanoUsd: 0, createdAtMs: clock.nowMs(), tries: 0 }),
      jobId: 'job-b.s1',
      intentJson: '{}',
      nowMs: clock.nowMs(),
      decisionJson: JSON.stringify({ decisionId: 'd-b', posteriors: [] }),
      spec: { a: 'b.s1', d: 'd-b', assumed: { a: 'out-a' }, ok: {}, res: 0, cls: 'a=c', at: clock.nowMs() },
    });
    expect(spec.ok).toBe(true);
    await direct.hdel(runKeys(ks, TENANT, runId).intents, 'job-b.s1');
  }
  await work(ks, clock, runId, 'a');
  if (marker !== undefined) proxy.dropReplyAfter(marker);
  return { ks, clock, engine, runId };
}

describe('the engine when a script reply is lost and ioredis re-sends the call', () => {
  it('completeNode answered duplicate to its own re-send: the run goes on in the same reconcile (b is launched)', async () => {
    const { ks, engine, runId } = await started('Completes a node from its authoritative attempt');
    const dropped = proxy.dropped();
    await engine.reconcile(TENANT, runId);
    expect(proxy.dropped()).toBe(dropped + 1);
    const s = await loadRun(direct, ks, TENANT, runId);
    expect(s?.nodes.get('a')?.state).toBe('succeeded');
    expect(s?.nodes.get('b')?.state).toBe('running');
  });

  it('finishRun re-sent: the run still ends in this scheduler (its keys get their TTL)', async () => {
    const { ks, clock, engine, runId } = await started('Marks a run succeeded once every node has succeeded');
    // The marker is armed; the first finishRun comes after b: a's completion launches b first.
    await engine.reconcile(TENANT, runId);
    await work(ks, clock, runId, 'b');
    const dropped = proxy.dropped();
    await engine.reconcile(TENANT, runId);
    expect(proxy.dropped()).toBe(dropped + 1);
    expect(await direct.hget(runKeys(ks, TENANT, runId).run, 'status')).toBe('succeeded');
    // The run's keys (or its compact record, once folded) carry the tenant's retention.
    const ttl = Math.max(await direct.pttl(runKeys(ks, TENANT, runId).run), await direct.pttl(runKeys(ks, TENANT, runId).rec));
    expect(ttl).toBeGreaterThan(0);
  });

  it('confirmSpeculation re-sent after it completed the node: the run still finishes in this reconcile', async () => {
    const { ks, clock, engine, runId } = await started(undefined, true);
    // b's speculation runs; a completes and its output matches the guess: the speculation waits for its attempt.
    const ref = { tenant: TENANT, runId, attemptId: 'b.s1', epoch: 1 };
    expect(await startAttempt(direct, ks, { ...ref, workerId: 'w2', nowMs: clock.nowMs() })).toEqual({ code: 'OK', tries: 1 });
    await engine.reconcile(TENANT, runId);
    expect((await loadRun(direct, ks, TENANT, runId))?.nodes.get('b')?.spec?.full).toBe(1);
    const usage = { inputTokens: 8, cachedInputTokens: 0, outputTokens: 4 };
    expect((await finishAttempt(direct, ks, { ...ref, tryNo: 1, outcome: 'ok', output: 'from the speculation', usage, usageEstimated: false, costNanoUsd: 2_000, finishedAtMs: clock.nowMs() })).code).toBe('OK');
    // Another scheduler (a client of its own: its first confirm is sent whole, with the marker).
    const other = await scheduler(ks, clock);
    proxy.dropReplyAfter('Confirms a speculation');
    const dropped = proxy.dropped();
    await other.reconcile(TENANT, runId);
    expect(proxy.dropped()).toBe(dropped + 1);
    const s = await loadRun(direct, ks, TENANT, runId);
    expect(s?.nodes.get('b')?.state).toBe('succeeded');
    expect(s?.header.status).toBe('succeeded');
  });

  it('compactRun re-sent: the folded run is still indexed as ended', async () => {
    const { ks, clock, engine, runId } = await started('Folds an ended, fully settled run into its compact record');
    await engine.reconcile(TENANT, runId);
    await work(ks, clock, runId, 'b');
    const dropped = proxy.dropped();
    await engine.reconcile(TENANT, runId);
    expect(proxy.dropped()).toBe(dropped + 1);
    expect(await direct.exists(runKeys(ks, TENANT, runId).rec)).toBe(1);
    expect(await direct.zscore(tenantKeys(ks, TENANT).ended, runId)).not.toBeNull();
  });
});
