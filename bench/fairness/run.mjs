// Fairness benchmark (issue 10 item 4): tenant B's p99 submit-to-launch while tenant A floods, as
// a ratio to B alone in the same run. Real processes: one scheduler, W workers of C authoritative
// slots each (simulated provider, time scale 1), one Redis.
//
// Submit-to-launch of a run = its operation's attempt `startedAtMs` (the worker started it) minus
// the run's `createdAtMs` (the scheduler accepted the submit); both on this machine's clock.
//
// Per mode, on a fresh stack:
//   alone: B submits a steady trickle (one single-node run every --trickle-ms for --trickle-sec);
//   flood: A submits --flood runs at once (one node of --a-op-ms each; from its own thread,
//          flood.mjs, as a separate client) and B trickles the same way, all inside A's backlog
//          (A's drain takes longer than B's trickle; checked and printed).
// Modes: `fair` (the default configuration: per-tenant ready lists, a tenant under its share of
// the slots first then deficit round-robin, jobs handed to BullMQ only for free slots, reserved
// slots, the submit gate) and `shared` (FAIR_QUEUE_HEADROOM large: every job goes
// straight into the shared BullMQ queue, first come first served, as before fair dispatch).
// Ratio = p99(flood) / p99(alone) per mode; the goal is ≤ 1.2 for `fair`.
//
// Usage: node bench/fairness/run.mjs [--workers 2] [--concurrency 4] [--flood 300] [--a-op-ms 200]
//          [--b-op-ms 50] [--trickle-ms 100] [--trickle-sec 8] [--rounds 3] [--modes fair,shared] [--submit-concurrency N]
// Each mode alternates the two phases --rounds times and pools the samples of each phase.
// Writes bench/results/fairness.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';
import { startRedis, uniquePrefix } from '@gambit/testkit';
import { SchedulerClient } from '../../packages/cli/dist/demo/client.js';
import { startServices } from '../agreement/stack.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
};
const WORKERS = Number(arg('workers', '2'));
const CONCURRENCY = Number(arg('concurrency', '4'));
const FLOOD = Number(arg('flood', '300'));
const A_OP_MS = Number(arg('a-op-ms', '200'));
const B_OP_MS = Number(arg('b-op-ms', '50'));
const TRICKLE_MS = Number(arg('trickle-ms', '100'));
const TRICKLE_SEC = Number(arg('trickle-sec', '8'));
const MODES = arg('modes', 'fair,shared').split(',');
/** Alone and flood phases alternate this many times per mode (samples pooled), so a change in the machine's load hits both alike. */
const ROUNDS = Number(arg('rounds', '3'));
/** SUBMIT_CONCURRENCY_PER_TENANT of the scheduler (unset: its default). */
const SUBMIT_CONCURRENCY = arg('submit-concurrency', undefined);
const GOAL = 1.2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function workflow(name, opMs) {
  return {
    name,
    nodes: [
      {
        id: 'work',
        kind: 'llm',
        provider: 'simulated',
        model: 'gpt-4o-mini',
        prompt: 'Do {{inputs.q}}',
        expectedOutputTokens: 2,
        maxTokens: 8,
        simulate: { output: 'ok', ttftMs: opMs, tokensPerSec: 1_000_000 },
      },
    ],
    edges: [],
  };
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50Ms: quantile(s, 0.5), p95Ms: quantile(s, 0.95), p99Ms: quantile(s, 0.99), maxMs: s[s.length - 1], meanMs: s.reduce((a, b) => a + b, 0) / s.length };
}

async function waitAll(client, tenant, runIds) {
  const views = [];
  for (const id of runIds) {
    for (;;) {
      const v = await client.run(tenant, id);
      if (v.status !== 'running') {
        if (v.status !== 'succeeded') throw new Error(`run ${tenant}/${id} ${v.status}: ${v.reason}`);
        views.push(v);
        break;
      }
      await sleep(100);
    }
  }
  return views;
}

/** Submit to the scheduler's launch (attempt created), and launch to the worker's start. */
const splitMs = (v) => {
  const a = v.nodes.work.attempts[0];
  return { launch: a.createdAtMs - v.createdAtMs, dispatch: a.startedAtMs - a.createdAtMs };
};

const launchMs = (v) => {
  const a = v.nodes.work.attempts[0];
  if (a?.startedAtMs === undefined) throw new Error(`run ${v.runId}: no started attempt`);
  return a.startedAtMs - v.createdAtMs;
};

/**
 * A's flood: FLOOD submits at once, from their own thread (flood.mjs), so handling A's hundreds
 * of concurrent requests and answers in this client does not delay B's trickle (in reality two
 * tenants are two clients). Resolves to A's run ids and when the last submit was answered.
 */
function floodSubmits(baseUrl, key, tenant) {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./flood.mjs', import.meta.url), { workerData: { baseUrl, key, tenant, runs: FLOOD } });
    w.once('message', (m) => {
      void w.terminate();
      if (m.error === undefined) resolve(m);
      else reject(new Error(`A's flood failed: ${m.error}`));
    });
    w.once('error', reject);
  });
}

/** B's steady trickle: one run every TRICKLE_MS for TRICKLE_SEC; returns the run ids. */
async function trickle(client, tenant) {
  const ids = [];
  const pending = [];
  const t0 = Date.now();
  for (let i = 0; Date.now() - t0 < TRICKLE_SEC * 1000; i++) {
    pending.push(client.submit({ tenant, workflow: `${tenant}-wf`, inputs: { q: `b${i}` }, speculation: false }).then((r) => ids.push(r.runId)));
    const next = t0 + (i + 1) * TRICKLE_MS;
    await sleep(Math.max(0, next - Date.now()));
  }
  await Promise.all(pending);
  return ids;
}

async function measureMode(redisUrl, mode) {
  const prefix = uniquePrefix(`fair-${mode}`);
  const services = await startServices({
    redisUrl,
    prefix,
    workers: WORKERS,
    timeScale: 1,
    workerConcurrency: CONCURRENCY,
    specConcurrency: 0,
    schedulerEnv: {
      // A's 300 concurrent submits wait in the scheduler's per-tenant gate; on the loaded 2-core
      // machine the last were answered after more than the default 10 s request deadline (503,
      // nothing stored), which aborts the benchmark. How long they took is printed.
      API_DEADLINE_MS: '30000',
      ...(mode === 'shared' ? { FAIR_QUEUE_HEADROOM: '1000000' } : {}),
      ...(SUBMIT_CONCURRENCY === undefined ? {} : { SUBMIT_CONCURRENCY_PER_TENANT: SUBMIT_CONCURRENCY }),
    },
  });
  const client = new SchedulerClient(services.baseUrl, services.adminKey);
  const keys = new Map();
  const clientOf = (t) => new SchedulerClient(services.baseUrl, keys.get(t));
  try {
    const alone = [];
    const flood = [];
    const floodViewsAll = [];
    const aLaunch = [];
    const stormViews = [];
    const backlog = [];
    const drains = [];
    const stormSecs = [];
    let outlasted = true;
    for (let round = 1; round <= ROUNDS; round++) {
      const [a, bAlone, bFlood] = ['a', 'b-alone', 'b-flood'].map((t) => `${mode}-${t}-${round}`);
      for (const t of [a, bAlone, bFlood]) {
        // Each tenant submits with its own API key, as tenants do (the tenant comes from the key).
        keys.set(t, (await client.createTenantKey(t)).key);
        await client.request('POST', '/v1/workflows', { tenant: t, workflow: workflow(`${t}-wf`, t === a ? A_OP_MS : B_OP_MS) });
      }
      await sleep(500);
      // B alone.
      const aloneIds = await trickle(clientOf(bAlone), bAlone);
      alone.push(...(await waitAll(client, bAlone, aloneIds)).map(launchMs));
      await sleep(500);
      // A floods: every submit at once; B trickles meanwhile.
      const floodFrom = Date.now();
      let aSubmitsDoneAt = 0;
      const aSubmits = floodSubmits(services.baseUrl, keys.get(a), a).then(({ ids, doneAtMs }) => {
        aSubmitsDoneAt = doneAtMs;
        return ids;
      });
      const floodIds = await trickle(clientOf(bFlood), bFlood);
      const trickleEnd = Date.now();
      const aIds = await aSubmits;
      const floodViews = await waitAll(client, bFlood, floodIds);
      floodViewsAll.push(...floodViews);
      flood.push(...floodViews.map(launchMs));
      // B's runs submitted while A's submits were still being answered (the scheduler busy
      // admitting them), and those submitted after, while A's backlog drained.
      stormViews.push(...floodViews.filter((v) => v.createdAtMs <= aSubmitsDoneAt));
      backlog.push(...floodViews.filter((v) => v.createdAtMs > aSubmitsDoneAt).map(launchMs));
      stormSecs.push((aSubmitsDoneAt - floodFrom) / 1000);
      const aViews = await waitAll(client, a, aIds);
      aLaunch.push(...aViews.map(launchMs));
      const aLastStart = Math.max(...aViews.map((v) => v.nodes.work.attempts[0].startedAtMs));
      drains.push((Math.max(...aViews.map((v) => v.finishedAtMs)) - floodFrom) / 1000);
      // The premise: A still had work waiting to start when B's trickle ended.
      if (!(aLastStart > trickleEnd)) outlasted = false;
      await sleep(500);
    }
    const sAlone = stats(alone);
    const sFlood = stats(flood);
    return {
      mode,
      rounds: ROUNDS,
      alone: sAlone,
      flood: sFlood,
      p99Ratio: sFlood.p99Ms / sAlone.p99Ms,
      p50Ratio: sFlood.p50Ms / sAlone.p50Ms,
      aRuns: FLOOD,
      aDrainSec: Math.max(...drains),
      aBacklogOutlastedTrickle: outlasted,
      aLaunchP50Ms: stats(aLaunch).p50Ms,
      // Where B's time went during the flood: the scheduler's launch, then the wait for a slot.
      floodSchedulerLaunch: stats(floodViewsAll.map((v) => splitMs(v).launch)),
      floodDispatchWait: stats(floodViewsAll.map((v) => splitMs(v).dispatch)),
      stormSchedulerLaunch: stats(stormViews.map((v) => splitMs(v).launch)),
      stormDispatchWait: stats(stormViews.map((v) => splitMs(v).dispatch)),
      aSubmitStormSec: Math.max(...stormSecs),
      floodDuringSubmitStorm: stats(stormViews.map(launchMs)),
      floodDuringBacklog: stats(backlog),
    };
  } finally {
    await services.stop();
  }
}

const redis = await startRedis();
const rows = [];
try {
  for (const mode of MODES) {
    const r = await measureMode(redis.url, mode);
    rows.push(r);
    process.stdout.write(
      `${mode}: B alone p50 ${r.alone.p50Ms} ms p99 ${r.alone.p99Ms} ms (n ${r.alone.n}); B during A's flood p50 ${r.flood.p50Ms} ms p99 ${r.flood.p99Ms} ms (n ${r.flood.n}); p99 ratio ${r.p99Ratio.toFixed(2)}; flood split: scheduler launch p50 ${r.floodSchedulerLaunch.p50Ms} p99 ${r.floodSchedulerLaunch.p99Ms} ms, slot wait p50 ${r.floodDispatchWait.p50Ms} p99 ${r.floodDispatchWait.p99Ms} ms; A's submits answered in ${r.aSubmitStormSec.toFixed(1)} s: B p99 ${r.floodDuringSubmitStorm.p99Ms} ms (n ${r.floodDuringSubmitStorm.n}) then ${r.floodDuringBacklog.p99Ms} ms (n ${r.floodDuringBacklog.n}) during the backlog (storm split: scheduler launch p99 ${r.stormSchedulerLaunch.p99Ms} ms, slot wait p99 ${r.stormDispatchWait.p99Ms} ms); A drained in ${r.aDrainSec.toFixed(1)} s\n`,
    );
  }
} finally {
  await redis.stop();
}

const head = ['mode', 'B alone p50', 'B alone p99', 'B flood p50', 'B flood p99', 'p99 ratio', 'A drain s', 'backlog outlasted'];
const body = rows.map((r) => [r.mode, `${r.alone.p50Ms} ms`, `${r.alone.p99Ms} ms`, `${r.flood.p50Ms} ms`, `${r.flood.p99Ms} ms`, r.p99Ratio.toFixed(2), r.aDrainSec.toFixed(1), String(r.aBacklogOutlastedTrickle)]);
const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
const line = (c) => c.map((x, i) => x.padStart(w[i])).join('  ');
process.stdout.write(`\n${[line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n')}\n`);

const fair = rows.find((r) => r.mode === 'fair');
const shared = rows.find((r) => r.mode === 'shared');
const out = {
  headline:
    fair === undefined
      ? 'fair mode not measured'
      : `tenant B's p99 submit-to-launch while tenant A floods ${FLOOD} runs: ${fair.flood.p99Ms} ms vs ${fair.alone.p99Ms} ms alone = ${fair.p99Ratio.toFixed(2)}x (goal ≤ ${GOAL})${shared === undefined ? '' : `; one shared FIFO queue (before): ${shared.p99Ratio.toFixed(1)}x`}`,
  goal: { p99Ratio: GOAL, met: fair === undefined ? null : fair.p99Ratio <= GOAL },
  config: { submitConcurrencyPerTenant: SUBMIT_CONCURRENCY ?? 'default', workers: WORKERS, concurrency: CONCURRENCY, flood: FLOOD, aOpMs: A_OP_MS, bOpMs: B_OP_MS, trickleMs: TRICKLE_MS, trickleSec: TRICKLE_SEC, modes: MODES },
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
  results: rows,
};
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../results/fairness.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`\n${out.headline}\nwrote bench/results/fairness.json\n`);
