// Drives one archetype's live workflow through the running services over HTTP (docs/api.md):
// registers it for two fresh tenants (`<tenant>-on`, `<tenant>-off`) configured with the dial
// (α, λ) and initialStage 'online', then submits N runs with speculation on and N with it off,
// interleaved (on i, off i, on i+1, …) so both see the same load, `concurrency` runs in flight,
// and returns the finished run views in pairs.
// Why two tenants: run i is submitted with the same runId (`r<i>`) on both, and the simulated
// provider seeds each node by `runId:nodeId` (scheduler jobs.ts), so the on and off runs of a
// pair draw the same outcomes and the same pseudo-text (same tokens): the pair differs only by
// what speculation did. Run keys and job ids include the tenant, so the two never collide.
import { SchedulerClient } from '../../packages/cli/dist/demo/client.js';
import { ruleMeans } from './compare.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function runToEnd(client, tenant, body, timeoutMs) {
  const { runId } = await client.submit(body);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await client.run(tenant, runId);
    if (view.status !== 'running') return view;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not finish within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/**
 * @param {string} baseUrl
 * @param {{ tenant: string, workflow: object, runs: number, concurrency: number, alpha: number,
 *   lambdaUsdPerSec: number, runTimeoutMs: number, adminKey: string }} opts
 * @returns {Promise<Array<{ i: number, on: object, off: object }>>}
 */
export async function runLive(baseUrl, opts) {
  const client = new SchedulerClient(baseUrl, opts.adminKey);
  const tenantOf = (speculation) => `${opts.tenant}-${speculation ? 'on' : 'off'}`;
  for (const speculation of [true, false]) {
    await client.configureTenant(tenantOf(speculation), {
      alpha: opts.alpha,
      lambdaUsdPerSec: opts.lambdaUsdPerSec,
      initialStage: 'online',
      budgetUsd: 1_000,
    });
    await client.request('POST', '/v1/workflows', { tenant: tenantOf(speculation), workflow: opts.workflow });
  }
  // Warm-up (issue 9): the first runs after the services start are slowed by JIT compilation and
  // script loading (a 50 ms call took 280 ms wall in the first off run, 40 ms in its on twin), which
  // breaks the pairing's equal durations. `warmup` runs of the workflow on a third tenant, with
  // speculation off (nothing learned by the measured tenants), go first and are discarded.
  const warm = `${opts.tenant}-warm`;
  await client.configureTenant(warm, { alpha: opts.alpha, lambdaUsdPerSec: opts.lambdaUsdPerSec, initialStage: 'online', budgetUsd: 1_000 });
  await client.request('POST', '/v1/workflows', { tenant: warm, workflow: opts.workflow });
  const warmup = opts.warmup ?? 4;
  await Promise.all(
    Array.from({ length: warmup }, (_, i) =>
      runToEnd(client, warm, { tenant: warm, runId: `w${i}`, workflow: opts.workflow.name, inputs: { request: `warm-up #${i}` }, speculation: false }, opts.runTimeoutMs),
    ),
  );
  const jobs = [];
  for (let i = 0; i < opts.runs; i++) for (const speculation of [true, false]) jobs.push({ i, speculation });
  const views = new Map();
  let next = 0;
  const lane = async () => {
    for (;;) {
      const job = jobs[next++];
      if (job === undefined) return;
      const tenant = tenantOf(job.speculation);
      const view = await runToEnd(
        client,
        tenant,
        { tenant, runId: `r${job.i}`, workflow: opts.workflow.name, inputs: { request: `customer request #${job.i}` }, speculation: job.speculation },
        opts.runTimeoutMs,
      );
      if (view.status !== 'succeeded') throw new Error(`run ${view.runId} ended ${view.status}: ${view.reason}`);
      views.set(`${job.i}:${job.speculation}`, view);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane));
  return Array.from({ length: opts.runs }, (_, i) => ({ i, on: views.get(`${i}:true`), off: views.get(`${i}:false`) }));
}

/**
 * The built-in tools whose simulated latency the worker multiplies by GAMBIT_SIM_TIME_SCALE
 * (services/worker/src/tools/builtins.ts): `kv_lookup`. `sleep` (the archetypes' tools) waits
 * its `args.ms` in real time, so its attempts are not divided by the scale.
 */
const SCALED_TOOLS = new Set(['kv_lookup']);

/**
 * A run view re-timed at time scale 1 (issue 9). The simulated provider sleeps `timeScale` × the
 * real duration, so an attempt's own running time is simulated time (÷ timeScale, except tools
 * that are not scaled, above); the time from
 * what triggered an attempt to its start (HTTP, queueing, the scheduler's and the worker's own
 * work) is wall-clock time that the time scale does not shrink, and is kept as measured.
 * Dividing everything by timeScale (the import before issue 9) turned a 5-130 ms dispatch gap
 * into 0.1-9 s at scale 0.05: longer than the upstream itself, so replay's speculative start
 * (upstream start + the node's recorded gap) fell after the upstream ended, and replay made no
 * decision where live launched (auto-reply `draft`: live 8 launches, replay 1-2 of 8).
 * An authoritative attempt's trigger is its last dependency's confirmed output (the run's
 * creation for a source); a speculative attempt's is the start of the upstreams it guessed (the
 * rule decides when they start) and the confirmed output of the others. A node's output is
 * confirmed at its attempt's end, or for a speculative hit at the later of that and its guessed
 * upstreams' confirmation. Per node: `startMs`, `durationMs`, `confirmedMs` (ms after the run's
 * creation), and the run's `latencyMs` (+ the wall-clock tail from the last confirmation to the
 * run's end).
 */
export function retime(workflow, view, timeScale) {
  const t0 = view.createdAtMs;
  // Tools whose latency the worker does not scale run in real time (÷ 1).
  const scaleOf = new Map(workflow.nodes.map((n) => [n.id, n.kind === 'tool' && !SCALED_TOOLS.has(n.tool) ? 1 : timeScale]));
  const used = (id) => {
    const ok = (view.nodes[id]?.attempts ?? []).filter((a) => a.status === 'succeeded');
    const a = (view.nodes[id]?.source === 'speculative' ? ok.find((x) => x.kind === 'speculative') : undefined) ?? ok.find((x) => x.kind === 'authoritative') ?? ok[0];
    if (a === undefined) throw new Error(`run ${view.runId}: node ${id} has no successful attempt`);
    return a;
  };
  const depsOf = new Map(workflow.nodes.map((n) => [n.id, workflow.edges.filter((e) => e.to === n.id).map((e) => e.from)]));
  const t = {};
  const visit = (id) => {
    if (t[id] !== undefined) return t[id];
    const a = used(id);
    const guessed = a.kind === 'speculative' ? new Set(Object.keys(a.assumed ?? {})) : new Set();
    // The trigger in wall time (the latest event the attempt waited for) and in real time.
    let trigWall = t0;
    let trigReal = 0;
    let realFloor = 0;
    for (const d of depsOf.get(id)) {
      const u = visit(d);
      const [w, r] = guessed.has(d) ? [u.startWall, u.startMs] : [u.confirmedWall, u.confirmedMs];
      if (w > trigWall) [trigWall, trigReal] = [w, r];
      realFloor = Math.max(realFloor, r);
    }
    const startMs = Math.max(trigReal + Math.max(0, a.startedAtMs - trigWall), realFloor);
    const durationMs = (a.finishedAtMs - a.startedAtMs) / scaleOf.get(id);
    let confirmedMs = startMs + durationMs;
    let confirmedWall = a.finishedAtMs;
    for (const d of guessed) {
      confirmedMs = Math.max(confirmedMs, t[d].confirmedMs);
      confirmedWall = Math.max(confirmedWall, t[d].confirmedWall);
    }
    t[id] = { startMs, durationMs, confirmedMs, startWall: a.startedAtMs, confirmedWall };
    return t[id];
  };
  for (const n of workflow.nodes) visit(n.id);
  const nodes = Object.values(t);
  const lastWall = Math.max(...nodes.map((x) => x.confirmedWall));
  const latencyMs = Math.max(...nodes.map((x) => x.confirmedMs)) + Math.max(0, view.finishedAtMs - lastWall);
  return { nodes: t, latencyMs };
}

/** Per-archetype measurements of the live runs, latencies re-timed at scale 1 (retime). */
export function measure(pairs, timeScale, workflow) {
  const sec = (v) => retime(workflow, v, timeScale).latencyMs / 1000;
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const on = pairs.map((p) => p.on);
  const off = pairs.map((p) => p.off);
  // Node level, as replay counts: a launch is a speculative attempt, a hit a node whose output
  // came from one. Edge-level outcome records (a join has one per guessed edge) are kept apart.
  let speculations = 0;
  let hits = 0;
  const edgeOutcomes = {};
  /** Runtime (non-plan) decisions of the on runs by action and reason, to explain differences. */
  const decisions = {};
  for (const v of on) {
    for (const d of v.decisions) if (d.phase !== 'plan') decisions[`${d.action}:${d.reason}`] = (decisions[`${d.action}:${d.reason}`] ?? 0) + 1;
    for (const n of Object.values(v.nodes)) {
      speculations += n.attempts.filter((a) => a.kind === 'speculative').length;
      if (n.source === 'speculative') hits++;
    }
    for (const o of v.outcomes) edgeOutcomes[o.kind] = (edgeOutcomes[o.kind] ?? 0) + 1;
  }
  const latOn = on.map(sec);
  const latOff = off.map(sec);
  return {
    runs: pairs.length,
    meanOnSec: mean(latOn),
    meanOffSec: mean(latOff),
    latencyRatio: mean(latOn) / mean(latOff),
    latOnSec: latOn,
    latOffSec: latOff,
    usdPerRunOn: mean(on.map((v) => v.dollars.total.usd)),
    usdPerRunOff: mean(off.map((v) => v.dollars.total.usd)),
    costOnUsd: on.map((v) => v.dollars.total.usd),
    wastedUsdPerRun: mean(on.map((v) => v.dollars.wasted.usd)),
    speculations,
    hits,
    edgeOutcomes,
    decisions,
  };
}

/** The diagnostics accumulator of one node, created on first use. */
function slot(out, id) {
  if (out[id] === undefined) out[id] = { launched: 0, streamRuns: 0, hits: 0, wastedNano: 0, decisions: {}, p: [], cSpecUsd: [], deltaTSec: [], list: [] };
  return out[id];
}

const avg = (xs) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * Per downstream node of the on runs: speculative launches, hits, and the runtime decisions
 * (count by action:reason, mean P, C_spec, ΔT), to set beside replay's (predict.mjs).
 */
export function liveNodeDiagnostics(pairs) {
  const out = {};
  const stream = streamRuns(pairs);
  for (const { on } of pairs) {
    for (const d of on.decisions) {
      if (d.phase === 'plan') continue;
      const n = slot(out, d.node);
      // M8 stream phase: launched on the upstream's streamed output, no guess left (P = 1, no
      // posterior). Replay has no streaming early start, so a node's runs with one are left out
      // on both sides (replay's: predict.mjs) and counted apart (planner-join `search_4`: 5 of
      // 40 runs in one 40-pair run).
      if (stream[d.node]?.has(on.runId)) {
        n.decisions[`${d.phase}:${d.action}:${d.reason}`] = (n.decisions[`${d.phase}:${d.action}:${d.reason}`] ?? 0) + 1;
        continue;
      }
      n.decisions[`${d.action}:${d.reason}`] = (n.decisions[`${d.action}:${d.reason}`] ?? 0) + 1;
      n.p.push(d.p);
      n.cSpecUsd.push(d.cSpecUsd);
      n.deltaTSec.push(d.deltaTSec);
      n.list.push({ key: `${d.action}:${d.reason}`, p: d.p, deltaTSec: d.deltaTSec });
    }
    for (const [id, node] of Object.entries(on.nodes)) {
      const specs = node.attempts.filter((a) => a.kind === 'speculative');
      if (specs.length === 0) continue;
      const n = slot(out, id);
      if (stream[id]?.has(on.runId)) {
        n.streamRuns++;
        continue;
      }
      n.launched += specs.length;
      if (node.source === 'speculative') n.hits++;
      // Waste: what the speculative attempts whose output was not used cost (dollars.wasted per node).
      for (const a of specs) if (!(node.source === 'speculative' && a.status === 'succeeded')) n.wastedNano += a.costNanoUsd ?? 0;
    }
  }
  return Object.fromEntries(
    Object.entries(out).map(([id, n]) => [
      id,
      {
        launched: n.launched,
        hits: n.hits,
        streamRuns: n.streamRuns,
        wastedUsd: n.wastedNano / 1e9,
        decisions: n.decisions,
        meanP: avg(n.p),
        meanCSpecUsd: avg(n.cSpecUsd),
        meanDeltaTSec: avg(n.deltaTSec),
        ...ruleMeans(n.list),
      },
    ]),
  );
}

/** Per node, the run ids of the on runs in which it was launched on a stream-phase decision (M8). */
export function streamRuns(pairs) {
  const out = {};
  for (const { on } of pairs)
    for (const d of on.decisions ?? [])
      if (d.phase === 'stream' && d.action === 'SPECULATE') {
        out[d.node] ??= new Set();
        out[d.node].add(on.runId);
      }
  return out;
}

/** Mean price of each node's authoritative attempt in the speculation-off runs, dollars. */
export function attemptPrices(pairs) {
  const sum = {};
  for (const { off } of pairs)
    for (const [id, node] of Object.entries(off.nodes)) {
      const a = node.attempts.find((x) => x.kind === 'authoritative' && x.status === 'succeeded');
      sum[id] = (sum[id] ?? 0) + (a?.costNanoUsd ?? 0) / 1e9;
    }
  return Object.fromEntries(Object.entries(sum).map(([id, v]) => [id, v / pairs.length]));
}

/**
 * Scheduling overhead of the speculation-off runs, in wall-clock ms (not scaled): per node, the
 * time from its last dependency's end (the run's creation, for a source) to its authoritative
 * attempt's start, and the run's end minus its last node's end. Scaled back to real time these
 * are multiplied by 1/timeScale, which is why they are reported separately.
 */
export function schedulingOverhead(workflow, pairs) {
  const gaps = [];
  const tails = [];
  for (const { off } of pairs) {
    const att = (id) => off.nodes[id].attempts.find((a) => a.status === 'succeeded' && a.kind === 'authoritative');
    let lastEnd = 0;
    for (const n of workflow.nodes) {
      const a = att(n.id);
      const deps = workflow.edges.filter((e) => e.to === n.id).map((e) => att(e.from).finishedAtMs);
      gaps.push(a.startedAtMs - Math.max(off.createdAtMs, ...deps));
      lastEnd = Math.max(lastEnd, a.finishedAtMs);
    }
    tails.push(off.finishedAtMs - lastEnd);
  }
  return { meanNodeGapMs: avg(gaps), meanRunTailMs: avg(tails), nodes: workflow.nodes.length };
}
