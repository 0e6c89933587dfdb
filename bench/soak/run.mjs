// Soak (issue 13 item 5): keeps K runs in flight for M minutes through the whole system (one
// scheduler, W workers, the estimator, one Redis; the simulated provider) and prints, every
// sample period, throughput, submit-to-end latency percentiles and Redis memory. Closed loop: a
// run that ends is replaced at once, so the in-flight count stays at K.
//
// The initial fill is ramped over one run's nominal length (RAMP, default 2 × OP_MS): the target
// in flight rises linearly from 0 to K, so the runs' ends are spread evenly and the steady
// completion (and replacement) rate is about K / run length (10,000 / 300 s ≈ 33 runs/s at the
// defaults). Submitting all K at once made them end in waves (up to 230 runs/s) faster than the
// submit path replaces them, and the soak did not hold K.
//
// The run: a → b, two simulated LLM calls of OP_MS each (time scale 1), speculation on (a router
// edge the rule decides on, so decisions, records and outcomes are part of the load). Ended runs
// expire after RUN_RETENTION_SEC and the estimator remembers outcome ids for
// ESTIMATOR_DEDUPE_WINDOW_MS (both set short here, so that what the ended runs keep reaches its
// steady state inside the soak; the warm-up covers both).
//
// Every sample also records the CPU share of each service process (/proc/<pid>/stat), of Redis
// (INFO cpu) and of the soak's own process, and the submits made, so a run that cannot hold K
// says which component saturated.
//
// Fails (exit 1) when memory is not flat: over the measured window (after warm-up and one
// retention period), the least-squares slope of used_memory must not move it by more than
// FLAT_TOLERANCE of its mean over the window (tolerance set here, before measuring), and the
// in-flight count (after each poll, averaged over the window) must stay within 2% of K (else the soak did not hold K in flight).
//
// A run whose keys expired before the poll saw it end (a loaded machine, a short retention) is
// counted as ended unseen (no latency) and replaced; the report says how many.
//
// Usage: node bench/soak/run.mjs [--inflight 10000] [--minutes 10] [--op-ms 150000] [--workers 2]
//          [--retention-sec 60] [--dedupe-window-sec 120] [--sample-sec 10] [--ramp-sec auto] [--warmup-sec auto]
//          [--submit-concurrency 50]
// Writes bench/results/soak.json (progress and every sample also go to stdout as they come).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { startRedis, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { SchedulerClient } from '../../packages/cli/dist/demo/client.js';
import { startServices } from '../agreement/stack.mjs';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(
    'node bench/soak/run.mjs [--inflight 10000] [--minutes 10] [--op-ms 150000] [--workers 2] [--retention-sec 60] [--dedupe-window-sec 120] [--sample-sec 10] [--ramp-sec auto] [--warmup-sec auto] [--submit-concurrency 50]\n' +
      'Keeps --inflight runs in flight for --minutes after the warm-up; exit 1 when Redis memory drifts more than ±10% over the measured window or the mean in-flight count (after each poll) falls below 98% of K.\n',
  );
  process.exit(0);
}
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return def;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
};
const num = (name, def, min) => {
  const v = Number(arg(name, String(def)));
  if (!Number.isFinite(v) || v < min) throw new Error(`--${name} must be a number ≥ ${min}, got ${arg(name, String(def))}`);
  return v;
};
const K = num('inflight', 10_000, 1);
const MINUTES = num('minutes', 10, 0.1);
const OP_MS = num('op-ms', 150_000, 10);
const WORKERS = num('workers', 2, 1);
const RETENTION_SEC = num('retention-sec', 60, 1);
// The estimator's minimum (services/estimator/src/dedupe-horizon.ts MIN_DEDUPE_WINDOW_MS).
const DEDUPE_WINDOW_SEC = num('dedupe-window-sec', 120, 60);
const SAMPLE_MS = 1000 * num('sample-sec', 10, 1);
// The initial fill's ramp: one run's nominal length (a then b), so the runs' ends are spread evenly.
const RAMP_MS = 1000 * num('ramp-sec', (2 * OP_MS) / 1000, 0);
// Submits in progress at once: the soak's submit loops, and the scheduler's
// SUBMIT_CONCURRENCY_PER_TENANT (default 2, a fairness gate between tenants, issue 10 item 4),
// set to the same here: the soak has one tenant, and with two submits in progress the submit
// rate is 2 / submit latency (5-25 submits/s on a loaded machine, under what K needs).
const SUBMIT_CONCURRENCY = num('submit-concurrency', 50, 1);
const FLAT_TOLERANCE = 0.1;
const POLL_MS = 1000;
const TENANT = 'soak';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function workflow() {
  const llm = (id, prompt, output) => ({
    id,
    kind: 'llm',
    provider: 'simulated',
    model: 'gpt-4o-mini',
    prompt,
    expectedOutputTokens: 4,
    maxTokens: 16,
    simulate: { output, ttftMs: OP_MS, tokensPerSec: 1_000_000 },
  });
  return {
    name: 'soak',
    version: 1,
    nodes: [llm('a', 'route {{inputs.request}}', 'billing'), llm('b', 'answer {{nodes.a.output}}', 'done')],
    edges: [{ from: 'a', to: 'b', type: 'router_k_way', k: 2, speculate: true }],
  };
}

const redis = await startRedis();
const conn = new Redis(redis.url);
const prefix = uniquePrefix('soak');
// Every worker slot is a simulated call waiting on a timer: K authoritative calls at once.
const perWorker = Math.ceil((1.2 * K) / WORKERS);
const services = await startServices({
  redisUrl: redis.url,
  prefix,
  workers: WORKERS,
  timeScale: 1,
  workerConcurrency: perWorker,
  specConcurrency: Math.max(8, Math.ceil(perWorker / 4)),
  schedulerEnv: { RUN_RETENTION_SEC: String(RETENTION_SEC), SUBMIT_CONCURRENCY_PER_TENANT: String(SUBMIT_CONCURRENCY) },
  estimatorEnv: { ESTIMATOR_DEDUPE_WINDOW_MS: String(DEDUPE_WINDOW_SEC * 1000) },
});
const client = new SchedulerClient(services.baseUrl, services.adminKey);
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await conn.info('memory'))[1]);
const pct = (xs, q) => (xs.length === 0 ? null : xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]);

/**
 * Where the memory is at the end: every key, grouped by its pattern (run and attempt ids folded),
 * with its count and the bytes of up to 50 sampled keys (MEMORY USAGE) scaled to the count; the
 * 15 largest patterns. A key that grows without bound shows here as a pattern whose count follows
 * the runs ended, not the runs in flight.
 */
async function keyPatterns() {
  const groups = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await conn.scan(cursor, 'COUNT', 5000);
    cursor = next;
    for (const k of keys) {
      const pattern = k
        .replace(/\{run:[^}]*\}/, '{run:*}')
        .replace(/:staging:.*$/, ':staging:*')
        .replace(/[0-9a-f]{16,}/g, '<hex>')
        .replace(/\d+/g, '#');
      const g = groups.get(pattern) ?? { count: 0, sample: [] };
      g.count++;
      if (g.sample.length < 50) g.sample.push(k);
      groups.set(pattern, g);
    }
  } while (cursor !== '0');
  const rows = [];
  for (const [pattern, g] of groups) {
    let sampled = 0;
    for (const k of g.sample) sampled += Number((await conn.call('MEMORY', 'USAGE', k)) ?? 0);
    rows.push({ pattern, count: g.count, bytes: Math.round((sampled / g.sample.length) * g.count) });
  }
  return rows.sort((a, b) => b.bytes - a.bytes).slice(0, 15);
}

let exitCode = 0;
try {
  await client.createTenantKey(TENANT);
  await client.request('PUT', `/v1/admin/tenants/${TENANT}/limits`, { ratePerSec: 10_000, burst: 4 * K, maxInFlightRuns: 2 * K });
  await client.request('POST', '/v1/workflows', { tenant: TENANT, workflow: workflow() });
  const memStart = await usedMemory();

  /** runId -> submit time (ms); the closed loop keeps its size at K. */
  const inflight = new Map();
  /** Runs whose submit was answered (created): a missing run hash then means ended and expired. */
  const created = new Set();
  let seq = 0;
  let submitErrors = 0;
  /** Submit latencies (ms, retries included) since the last sample. */
  let submitMs = [];
  const submitOne = async () => {
    const runId = `s${seq++}`;
    const t = Date.now();
    inflight.set(runId, t);
    submitsTotal++;
    try {
      await client.submit({ tenant: TENANT, workflow: 'soak', runId, inputs: { request: `r${seq}` }, speculation: true });
      submitMs.push(Date.now() - t);
      created.add(runId);
    } catch (err) {
      inflight.delete(runId);
      submitErrors++;
      if (submitErrors > 100) throw new Error(`more than 100 submits failed; last: ${err.message}`);
    }
  };
  let submitsTotal = 0;
  /** The runs to hold now: rises linearly from 0 to K over the ramp, then K. */
  const target = () => (RAMP_MS === 0 ? K : Math.min(K, Math.ceil((K * (Date.now() - t0)) / RAMP_MS)));
  /** Ended runs since the last sample: [latencyMs, status] ([null, 'unseen'] for one ended unseen). */
  let ended = [];
  let endedTotal = 0;
  let endedUnseen = 0;
  let failedTotal = 0;
  const poll = async () => {
    const ids = [...inflight.keys()];
    for (let i = 0; i < ids.length; i += 2000) {
      const chunk = ids.slice(i, i + 2000);
      const p = conn.pipeline();
      for (const id of chunk) p.hmget(`${prefix}:{run:${TENANT}:${id}}:run`, 'status', 'createdAtMs', 'finishedAtMs');
      const res = await p.exec();
      res.forEach(([err, v], k) => {
        const id = chunk[k];
        if (err !== null || v[0] === 'running') return;
        if (v[0] === null) {
          // Created, then gone: it ended and its record expired between two polls.
          if (!created.has(id)) return;
          endedUnseen++;
          endedTotal++;
          ended.push([null, 'unseen']);
        } else {
          ended.push([Number(v[2]) - Number(v[1]), v[0]]);
          endedTotal++;
          if (v[0] !== 'succeeded') failedTotal++;
        }
        inflight.delete(id);
        created.delete(id);
      });
    }
  };

  const t0 = Date.now();
  // Warm-up: the ramp (K in flight at its end; the runs it started end from one run length on,
  // at the steady rate, since they were started at that rate), then the longer of the retention
  // and the dedupe window (what ended runs keep reaches its steady state), then 60 s.
  const warmupMs =
    arg('warmup-sec', null) === null
      ? RAMP_MS + Math.max(RETENTION_SEC, DEDUPE_WINDOW_SEC) * 1000 + 60_000
      : 1000 * num('warmup-sec', 0, 0);
  const endAt = t0 + warmupMs + MINUTES * 60_000;
  process.stdout.write(
    `soak: K=${K} in flight, ${WORKERS} workers × ${perWorker} slots, op ${OP_MS} ms, ramp ${RAMP_MS / 1000} s, retention ${RETENTION_SEC} s, dedupe window ${DEDUPE_WINDOW_SEC} s; warm-up ${Math.round(warmupMs / 1000)} s, then ${MINUTES} min measured\n`,
  );
  const samples = [];
  let lastSample = Date.now();
  let running = true;
  /**
   * The runs in flight after each poll since the last sample (mean and fewest), counted right
   * after the poll took the ended ones out and before they were replaced: what the system really
   * held. The poll, the top-up and
   * the sampling run as three loops, so a slow submit path (a loaded machine) shows as fewer runs
   * in flight, never as a stalled poll or a late sample.
   */
  let minSinceSample = Number.POSITIVE_INFINITY;
  let sumSinceSample = 0;
  let pollsSinceSample = 0;
  const pollLoop = (async () => {
    while (running) {
      await sleep(POLL_MS);
      await poll();
      minSinceSample = Math.min(minSinceSample, inflight.size);
      sumSinceSample += inflight.size;
      pollsSinceSample++;
    }
  })();
  // SUBMIT_CONCURRENCY loops, each submitting while fewer than target() runs are in flight (a run
  // counts from its submit's start), so one slow submit holds up only its own loop.
  let rampDone = false;
  const topUpLoop = Promise.all(
    Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
      while (running) {
        if (!rampDone && inflight.size >= K) {
          rampDone = true;
          process.stdout.write(`ramp: ${K} in flight at ${((Date.now() - t0) / 1000).toFixed(1)} s (ramp ${RAMP_MS / 1000} s)\n`);
        }
        if (inflight.size < target()) await submitOne();
        else await sleep(20);
      }
    }),
  );
  /** CPU seconds so far: each service process (utime + stime, /proc/<pid>/stat), Redis, the soak. */
  const clkTck = 100;
  const cpuNow = async () => {
    const procs = {};
    for (const p of services.processes) {
      const stat = readFileSync(`/proc/${p.proc.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs[p.name] = (Number(f[11]) + Number(f[12])) / clkTck;
    }
    const info = await conn.info('cpu');
    procs.redis = Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
    const u = process.cpuUsage();
    procs.soak = (u.user + u.system) / 1e6;
    return procs;
  };
  let lastCpu = await cpuNow();
  let lastSubmits = 0;
  while (Date.now() < endAt) {
    await sleep(Math.max(0, lastSample + SAMPLE_MS - Date.now()));
    const sec = (Date.now() - lastSample) / 1000;
    lastSample = Date.now();
    const cpu = await cpuNow();
    const cpuShare = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Number(((v - lastCpu[k]) / sec).toFixed(3))]));
    lastCpu = cpu;
    const lat = ended.flatMap(([l]) => (l === null ? [] : [l])).sort((a, b) => a - b);
    const s = {
      tSec: Math.round((Date.now() - t0) / 1000),
      measured: Date.now() - t0 >= warmupMs,
      inFlight: pollsSinceSample > 0 ? Math.round(sumSinceSample / pollsSinceSample) : inflight.size,
      inFlightMin: Number.isFinite(minSinceSample) ? minSinceSample : inflight.size,
      runsPerSec: ended.length / sec,
      submitsPerSec: (submitsTotal - lastSubmits) / sec,
      submitP50Ms: pct(submitMs.sort((a, b) => a - b), 0.5),
      submitP99Ms: pct(submitMs, 0.99),
      latencyP50Ms: pct(lat, 0.5),
      latencyP95Ms: pct(lat, 0.95),
      latencyP99Ms: pct(lat, 0.99),
      usedMemoryBytes: await usedMemory(),
      endedTotal,
      endedUnseen,
      failedTotal,
      /** CPU seconds per second of each process over the period (1.0 = one core). */
      cpu: cpuShare,
      loadavg1: loadavg()[0],
    };
    lastSubmits = submitsTotal;
    submitMs = [];
    ended = [];
    minSinceSample = Number.POSITIVE_INFINITY;
    sumSinceSample = 0;
    pollsSinceSample = 0;
    samples.push(s);
    // The services log at info (their readiness lines are info); what they printed is kept by
    // the process handles for error reports, so drop it here, or the soak's own memory grows.
    for (const p of services.processes) p.lines.length = 0;
    process.stdout.write(
      `t=${s.tSec}s${s.measured ? '' : ' (warm-up)'}  in flight ${s.inFlight} (min ${s.inFlightMin})  ${s.runsPerSec.toFixed(1)} runs/s  p50 ${s.latencyP50Ms} p95 ${s.latencyP95Ms} p99 ${s.latencyP99Ms} ms  redis ${(s.usedMemoryBytes / 2 ** 20).toFixed(1)} MiB  ended ${endedTotal} (failed ${failedTotal}, unseen ${endedUnseen})  submits ${s.submitsPerSec.toFixed(1)}/s (p50 ${s.submitP50Ms} p99 ${s.submitP99Ms} ms)  cpu ${Object.entries(cpuShare).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' ')}  load ${s.loadavg1.toFixed(1)}\n`,
    );
  }
  running = false;
  await Promise.all([pollLoop, topUpLoop]);

  const m = samples.filter((s) => s.measured);
  if (m.length < 3) throw new Error(`only ${m.length} samples in the measured window: raise --minutes or lower --sample-sec`);
  // Least squares of used_memory on time over the measured window.
  const xs = m.map((s) => s.tSec);
  const ys = m.map((s) => s.usedMemoryBytes);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const spanSec = xs[xs.length - 1] - xs[0];
  const drift = (slope * spanSec) / my;
  // Held: the runs in flight after each poll (ended ones out, not yet replaced), averaged over the
  // window, at least 98% of K; the fewest at any poll is reported beside it (runs end in waves
  // when they started together, and the replacements take the submit path's time).
  const meanInFlight = m.reduce((a, s) => a + s.inFlight, 0) / m.length;
  const minInFlight = Math.min(...m.map((s) => s.inFlightMin));
  const rates = m.map((s) => s.runsPerSec);
  const flat = Math.abs(drift) <= FLAT_TOLERANCE;
  const held = meanInFlight >= 0.98 * K;
  const out = {
    headline: `${K} runs in flight for ${MINUTES} min: ${(rates.reduce((a, b) => a + b, 0) / rates.length).toFixed(1)} runs/s, Redis ${(my / 2 ** 20).toFixed(1)} MiB (${(my / K / 1024).toFixed(2)} KiB per in-flight run incl. retained ended runs), memory drift ${(100 * drift).toFixed(1)}% over the window (tolerance ±${100 * FLAT_TOLERANCE}%): ${flat ? 'flat' : 'NOT FLAT'}; in flight ${Math.round(meanInFlight)} on average (min ${minInFlight})${held ? '' : ' (did NOT hold K)'}`,
    pass: flat && held,
    config: { inflight: K, minutes: MINUTES, opMs: OP_MS, rampSec: RAMP_MS / 1000, workers: WORKERS, slotsPerWorker: perWorker, submitConcurrency: SUBMIT_CONCURRENCY, retentionSec: RETENTION_SEC, dedupeWindowSec: DEDUPE_WINDOW_SEC, sampleSec: SAMPLE_MS / 1000, warmupSec: warmupMs / 1000, flatTolerance: FLAT_TOLERANCE },
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
    memory: { startBytes: memStart, meanBytes: my, slopeBytesPerSec: slope, driftOverWindow: drift },
    runs: { ended: endedTotal, endedUnseen, failed: failedTotal, submitErrors, submits: submitsTotal, submitRetries: client.submitRetries },
    samples,
  };
  out.keys = await keyPatterns();
  process.stdout.write(`\nRedis keys at the end, by pattern (count, estimated bytes):\n${out.keys.map((k) => `  ${k.pattern}  ${k.count}  ${k.bytes}`).join('\n')}\n`);
  mkdirSync(new URL('../results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../results/soak.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\n${out.headline}\nwrote bench/results/soak.json\n`);
  if (!out.pass) exitCode = 1;
} finally {
  await services.stop();
  conn.disconnect();
  await redis.stop();
}
process.exit(exitCode);
