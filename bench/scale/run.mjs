// Scale benchmark (GitHub issue 6 item 6): throughput of the whole system (scheduler + estimator +
// W worker processes on one Redis) in runs/s and nodes/s with W = 1, 2, 4 workers, on
// latency-bound simulated operations (every LLM call takes OP_MS of simulated time, speculation
// off), with K runs kept in flight by a closed-loop HTTP client; the ratio of each to W = 1
// (the baseline measured in the same run). Also Redis memory: INFO used_memory before the load,
// during the plateau of K in-flight runs ((plateau − before − what the runs finished so far keep) / K
// per in-flight run), and after
// every run has finished ((after − before) / completed runs: what a finished run keeps).
//
// Usage: node bench/scale/run.mjs [--workers 1,2,4] [--inflight 48] [--op-ms 200]
//          [--warmup-sec 3] [--measure-sec 8]
// Writes bench/results/scale.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { startRedis, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { SchedulerClient } from '../../packages/cli/dist/demo/client.js';
import { startServices } from '../agreement/stack.mjs';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
};
const WORKERS = arg('workers', '1,2,4').split(',').map(Number);
const INFLIGHT = Number(arg('inflight', '48'));
const OP_MS = Number(arg('op-ms', '200'));
const WARMUP_MS = 1000 * Number(arg('warmup-sec', '3'));
const MEASURE_MS = 1000 * Number(arg('measure-sec', '8'));
const WORKER_CONCURRENCY = 16;
const POLL_MS = 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** a → (b, c) → d: four LLM calls of OP_MS each, critical path 3 × OP_MS. */
function workflow() {
  const llm = (id, prompt) => ({
    id,
    kind: 'llm',
    provider: 'simulated',
    model: 'gpt-4o-mini',
    prompt,
    expectedOutputTokens: 2,
    maxTokens: 8,
    simulate: { output: 'ok', ttftMs: OP_MS, tokensPerSec: 1_000_000 },
  });
  return {
    name: 'scale',
    version: 1,
    nodes: [llm('a', '{{inputs.request}}'), llm('b', 'b {{nodes.a.output}}'), llm('c', 'c {{nodes.a.output}}'), llm('d', 'd {{nodes.b.output}} {{nodes.c.output}}')],
    edges: [
      { from: 'a', to: 'b', type: 'free_text', speculate: false },
      { from: 'a', to: 'c', type: 'free_text', speculate: false },
      { from: 'b', to: 'd', type: 'free_text', speculate: false },
      { from: 'c', to: 'd', type: 'free_text', speculate: false },
    ],
  };
}
const NODES_PER_RUN = 4;

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

async function measureWorkers(redisUrl, redis, workers) {
  const prefix = uniquePrefix(`scale${workers}`);
  const services = await startServices({ redisUrl, prefix, workers, timeScale: 1, workerConcurrency: WORKER_CONCURRENCY, specConcurrency: 0 });
  const client = new SchedulerClient(services.baseUrl, services.adminKey);
  const tenant = 'scale';
  try {
    await client.request('POST', '/v1/workflows', { tenant, workflow: workflow() });
    await sleep(500);
    const memBefore = await usedMemory(redis);
    const finished = []; // [finishedAtMs, latencyMs]
    let stop = false;
    let inFlight = 0;
    let submitted = 0;
    const lane = async () => {
      while (!stop) {
        const { runId } = await client.submit({ tenant, workflow: 'scale', inputs: { request: `r${submitted++}` }, speculation: false });
        inFlight++;
        for (;;) {
          await sleep(POLL_MS);
          const v = await client.run(tenant, runId);
          if (v.status === 'running') continue;
          if (v.status !== 'succeeded') throw new Error(`run ${runId} ${v.status}: ${v.reason}`);
          finished.push([v.finishedAtMs, v.finishedAtMs - v.createdAtMs]);
          break;
        }
        inFlight--;
      }
    };
    const t0 = Date.now();
    const lanes = Array.from({ length: INFLIGHT }, lane);
    await sleep(WARMUP_MS);
    const from = Date.now();
    const memSamples = [];
    const inflightSamples = [];
    while (Date.now() - from < MEASURE_MS) {
      memSamples.push([await usedMemory(redis), finished.length]);
      inflightSamples.push(inFlight);
      await sleep(500);
    }
    const to = Date.now();
    stop = true;
    await Promise.all(lanes);
    await sleep(1000);
    const memAfter = await usedMemory(redis);
    const inWindow = finished.filter(([f]) => f >= from && f < to);
    const sec = (to - from) / 1000;
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const memPlateau = median(memSamples.map(([m]) => m));
    const perCompletedRunBytes = (memAfter - memBefore) / finished.length;
    // Why the correction: during the plateau Redis also holds what every run finished so far keeps
    // (run hashes, completed BullMQ jobs, stream entries), which grows with time, not with K.
    const perInFlightRunBytes = median(memSamples.map(([m, done]) => (m - memBefore - perCompletedRunBytes * done) / INFLIGHT));
    const lat = inWindow.map(([, l]) => l).sort((a, b) => a - b);
    return {
      workers,
      runsPerSec: inWindow.length / sec,
      nodesPerSec: (NODES_PER_RUN * inWindow.length) / sec,
      runLatencyP50Ms: lat[Math.floor(lat.length / 2)],
      runLatencyP95Ms: lat[Math.floor(0.95 * (lat.length - 1))],
      criticalPathMs: 3 * OP_MS,
      inFlightMedian: median(inflightSamples),
      completedRuns: finished.length,
      // Submits answered 429/503 and tried again (SchedulerClient.submit): a loaded scheduler sheds load.
      submitRetries: { ...client.submitRetries },
      memory: {
        beforeBytes: memBefore,
        plateauBytes: memPlateau,
        afterBytes: memAfter,
        /** (plateau − before) / K, uncorrected: includes what the runs finished so far keep. */
        plateauMinusBeforePerInFlightBytes: (memPlateau - memBefore) / INFLIGHT,
        perInFlightRunBytes,
        perCompletedRunBytes,
      },
      wallSec: (Date.now() - t0) / 1000,
    };
  } finally {
    await services.stop();
  }
}

const redis = await startRedis();
const conn = new Redis(redis.url);
const rows = [];
try {
  for (const w of WORKERS) {
    const r = await measureWorkers(redis.url, conn, w);
    rows.push(r);
    process.stdout.write(`workers ${w}: ${r.runsPerSec.toFixed(1)} runs/s, ${r.nodesPerSec.toFixed(1)} nodes/s, p50 ${r.runLatencyP50Ms} ms\n`);
  }
} finally {
  conn.disconnect();
  await redis.stop();
}
const base = rows.find((r) => r.workers === 1) ?? rows[0];
for (const r of rows) r.ratioVs1Worker = r.runsPerSec / base.runsPerSec;

const head = ['workers', 'runs/s', 'nodes/s', 'vs 1 worker', 'run p50 ms', 'run p95 ms', 'in flight', 'B/in-flight run', 'B/completed run', 'submits retried (429/503)'];
const body = rows.map((r) => [
  String(r.workers),
  r.runsPerSec.toFixed(1),
  r.nodesPerSec.toFixed(1),
  r.ratioVs1Worker.toFixed(2),
  String(r.runLatencyP50Ms),
  String(r.runLatencyP95Ms),
  String(r.inFlightMedian),
  r.memory.perInFlightRunBytes.toFixed(0),
  r.memory.perCompletedRunBytes.toFixed(0),
  `${r.submitRetries[429]}/${r.submitRetries[503]}`,
]);
const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
const line = (c) => c.map((x, i) => x.padStart(w[i])).join('  ');
process.stdout.write(`\n${[line(head), w.map((x) => '-'.repeat(x)).join('  '), ...body.map(line)].join('\n')}\n`);

const top = rows[rows.length - 1];
// Issue 13's target, fixed before measuring: four workers ≥ 3.6× one worker.
const TARGET_RATIO_4 = 3.6;
const four = rows.find((r) => r.workers === 4);
const out = {
  target: { workers: 4, minRatioVs1Worker: TARGET_RATIO_4, measured: four?.ratioVs1Worker ?? null, met: four === undefined ? null : four.ratioVs1Worker >= TARGET_RATIO_4 },
  headline: `${top.workers} workers: ${top.runsPerSec.toFixed(1)} runs/s (${top.ratioVs1Worker.toFixed(2)}x 1 worker), ${top.nodesPerSec.toFixed(0)} nodes/s; Redis ≈ ${(top.memory.perInFlightRunBytes / 1024).toFixed(1)} KiB per in-flight run, ${(top.memory.perCompletedRunBytes / 1024).toFixed(1)} KiB kept per finished run`,
  config: { workers: WORKERS, inflight: INFLIGHT, opMs: OP_MS, nodesPerRun: NODES_PER_RUN, workerConcurrency: WORKER_CONCURRENCY, pollMs: POLL_MS, warmupSec: WARMUP_MS / 1000, measureSec: MEASURE_MS / 1000 },
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
  results: rows,
};
mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../results/scale.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`\n${out.headline}\n`);
if (four !== undefined) process.stdout.write(`four workers vs one: ${four.ratioVs1Worker.toFixed(2)}x (target ≥ ${TARGET_RATIO_4}x): ${out.target.met ? 'met' : 'NOT met'}\n`);
process.stdout.write('wrote bench/results/scale.json\n');
if (out.target.met === false) process.exitCode = 1;
