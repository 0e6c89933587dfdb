// Drift benchmark (METHOD.md M9.5, docs/estimator.md):
//  1. Alarm → pause: a real estimator process detects drift on an online class (60 hits, then
//     misses in a row) and sets the kill switch (key write + PUBLISH in one Lua script); 4 ControlPlane child
//     processes report when they applied it. Latency = (last child's apply time) − (the kill
//     entry's atMs, the estimator's Date.now() just before the script). Wall-clock ms on one
//     machine; atMs is whole ms, so latencies may read up to 1 ms high. Repeated ≥ 30 times.
//  2. Throughput: N outcomes XADDed in pipelined batches; time until every entry is acked by one
//     estimator (validation + Lua update + detectors + stage machine), next to a baseline in the
//     same run: the same XADD + XREADGROUP + XACK loop without any of that work, at the same
//     COUNT (--batch, 500: the estimator's default ESTIMATOR_BATCH). --rounds (3) rounds of both,
//     on fresh streams; the ratio reported is the median of the per-round ratios (issue 13: ≥ 0.5).
//  3. Detector accuracy (detectors.mjs, pure simulation): false alarms per stationary outcome at
//     p = 0.05 … 0.95 and detection delay after drops, for the live detector and the one it
//     replaced; fails (exit 1) where issue 9's tolerances are not met.
//
//   pnpm exec turbo run build && node bench/drift/run.mjs [--alarms 40] [--outcomes 20000]
//   node bench/drift/run.mjs --only detectors [--classes 200]   (part 3 alone, merged into drift.json)
//   node bench/drift/run.mjs --only throughput [--rounds 3] [--outcomes 20000] [--batch 500] [--tp-classes 20]
//                                                                (part 2 alone, merged into drift.json)
//        [--warmup N]  N outcomes drained by each consumer before the timed part (default 0: a
//        fresh process, its first outcomes run before the JIT compiled its code)
//        [--compare PATH]  each round also runs the estimator at PATH (another build's
//        services/estimator/dist/main.js, e.g. a worktree of main) on its own fresh stream, the
//        two estimators in alternating order after the raw loop: a before/after in the same minutes
//        [--profile DIR]  the estimator of each throughput round runs with node --cpu-prof into DIR
//        (a .cpuprofile per round: chrome://inspect or speedscope); Redis' INFO commandstats over
//        each drain (calls and µs per outcome, by command) is printed and kept either way.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane, mulberry32, silentLogger, systemClock } from '@gambit/shared';
import { controlKeys } from '@gambit/shared/redis';
import { startCommand, startProcess, startRedis } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { measureDetectors } from './detectors.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ALARMS = arg('alarms', 40);
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const resultsFile = join(here, '..', 'results', 'drift.json');

function detectorPart() {
  const d = measureDetectors({ classes: arg('classes', 200), dropTrials: arg('drop-trials', 1000) });
  const lines = [
    ...d.live.falseAlarms.map(
      (r, i) => `false alarms p=${r.p}: ${r.alarms}/${r.outcomes} (${r.perOutcome.toExponential(1)}/outcome, ${(100 * r.shareOfClassesKilled).toFixed(1)}% of classes killed in ${d.method.outcomesPerClass}); old detector ${d.baselineOld.falseAlarms[i].alarms} (${(100 * d.baselineOld.falseAlarms[i].shareOfClassesKilled).toFixed(1)}%)`,
    ),
    ...d.live.detection.map(
      (r, i) => `drop ${r.pre}→${r.post}: delay p50 ${r.p50} p90 ${r.p90} p99 ${r.p99} outcomes; old detector p50 ${d.baselineOld.detection[i].p50} p99 ${d.baselineOld.detection[i].p99}`,
    ),
  ];
  for (const l of lines) console.log(l);
  console.log(JSON.stringify(d.verdict, null, 2));
  const ok = d.verdict.falseAlarmsWithinTolerance && d.verdict.detectionWithinTolerance.every((x) => x.pass);
  if (!ok) {
    console.log('drift detectors: a tolerance of issue 9 is not met (see verdict)');
    process.exitCode = 1;
  }
  return { ...d, headline: lines };
}

if (ONLY === 'detectors') {
  const previous = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : { benchmark: 'drift' };
  const detectors = detectorPart();
  mkdirSync(dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify({ ...previous, detectors, detectorsAt: new Date().toISOString() }, null, 2)}\n`);
  process.exit();
}

const OUTCOMES = arg('outcomes', 20_000);
const ROUNDS = arg('rounds', 3);
const BATCH = arg('batch', 500);
const CLASSES = arg('tp-classes', 20);
const CHILDREN = 4;
const WARMUP = arg('warmup', 0);
const COMPARE = process.argv.includes('--compare') ? process.argv[process.argv.indexOf('--compare') + 1] : undefined;
const PROFILE_DIR = process.argv.includes('--profile') ? process.argv[process.argv.indexOf('--profile') + 1] : undefined;
const ESTIMATOR = join(root, 'services', 'estimator', 'dist', 'main.js');

const q = (xs, f) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(f * s.length) - 1))];
};
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(5);
  }
}

const ownRedis = process.env.REDIS_URL === undefined ? await startRedis() : undefined;
const url = process.env.REDIS_URL ?? ownRedis.url;
const redis = new Redis(url);
const procs = [];
const cleanup = async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await redis.quit();
  await ownRedis?.stop();
};

let seq = 0;
function outcome(classId, kind) {
  seq++;
  return JSON.stringify({
    outcomeId: `o${seq}`, decisionId: `d${seq}`, tenant: 'bench', workflow: 'w', runId: `r${seq}`, edgeClass: classId,
    kind, wasteUsd: kind === 'miss' ? 0.001 : 0, secondsSaved: kind === 'hit' ? 1 : 0, fencingViolation: false, atMs: Date.now(),
  });
}

// ---- 2. throughput ------------------------------------------------------------------------------
/** CPU ms (user + system) of a child process so far, from /proc (Linux). */
function procCpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 10 ms (USER_HZ 100)
}
async function redisCpuMs() {
  const info = await redis.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
}

/** Redis `INFO commandstats` as { command: { calls, usec } } (every client of the server). */
async function commandStats() {
  const out = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) };
  }
  return out;
}
/** Per outcome, by command, between two commandStats(): calls and server µs (the bench's own XADDs and polls included). */
function commandDelta(a, b) {
  const out = {};
  for (const [k, v] of Object.entries(b)) {
    const calls = v.calls - (a[k]?.calls ?? 0);
    const usec = v.usec - (a[k]?.usec ?? 0);
    if (calls > 0) out[k] = { callsPerOutcome: round(calls / OUTCOMES, 4), usPerOutcome: round(usec / OUTCOMES, 2) };
  }
  return out;
}

/** Wall ms until every entry is acked, and the CPU µs per outcome of the consumer process and of Redis meanwhile. */
async function drain(stream, consumerGroupReady, pid) {
  await consumerGroupReady;
  const send = async (n, rnd) => {
    for (let sent = 0; sent < n; sent += 1000) {
      const pipe = redis.pipeline();
      for (let j = 0; j < Math.min(1000, n - sent); j++) {
        const c = `t${(sent + j) % CLASSES}`;
        pipe.xadd(stream, '*', 'outcome', outcome(c, rnd() < 0.9 ? 'hit' : 'miss'));
      }
      await pipe.exec();
    }
  };
  const acked = (n) =>
    until(async () => {
      const groups = await redis.xinfo('GROUPS', stream);
      const g = groups[0];
      const get = (k) => g[g.indexOf(k) + 1];
      return Number(get('entries-read')) >= n && Number(get('pending')) === 0;
    }, 600_000, 'all entries acked');
  // --warmup: a running consumer (its code compiled, its classes' windows filled), not a fresh process.
  if (WARMUP > 0) {
    await send(WARMUP, mulberry32(7));
    await acked(WARMUP);
  }
  const cpu0 = procCpuMs(pid);
  const rcpu0 = await redisCpuMs();
  const cs0 = await commandStats();
  const t0 = performance.now();
  await send(OUTCOMES, mulberry32(42)); // same stationary 90% hit sequence for both consumers
  await acked(WARMUP + OUTCOMES);
  const ms = performance.now() - t0;
  const cpuUsPerOutcome = ((procCpuMs(pid) - cpu0) * 1000) / OUTCOMES;
  const redisCpuUsPerOutcome = (((await redisCpuMs()) - rcpu0) * 1000) / OUTCOMES;
  return { ms, cpuUsPerOutcome, redisCpuUsPerOutcome, commands: commandDelta(cs0, await commandStats()) };
}

/** One round: the raw read/ack loop, then one estimator, on fresh streams (same batch size). */
async function throughputRound(round) {
  const prefix = `bench:drift:${process.pid}:tp${round}`;
  // Baseline: raw read/ack loop.
  const rawStream = `${prefix}:raw:{s}`;
  const raw = startProcess('raw', join(here, 'raw-consumer.mjs'), [], { REDIS_URL: url, STREAM: rawStream, BATCH: String(BATCH) });
  procs.push(raw);
  const rawD = await drain(rawStream, raw.waitForLine((l) => l.includes('"type":"ready"'), 20_000), raw.proc.pid);
  await raw.stop();
  // Estimator: CLASSES online classes at a stationary 90% hit rate (detectors run on every outcome).
  const runEstimator = async (name, script, pfx) => {
    const cp2 = new ControlPlane(url, { prefix: pfx }, systemClock, silentLogger);
    for (let c = 0; c < CLASSES; c++) await cp2.ensureClass(`t${c}`, { depType: 'passthrough', prior: { a: 180, b: 20 }, initialStage: 'online', tenant: 'bench' });
    await cp2.close();
    const estEnv = { REDIS_URL: url, GAMBIT_PREFIX: pfx, ESTIMATOR_ID: 'bench-tp', ESTIMATOR_BATCH: String(BATCH), LOG_LEVEL: 'info' };
    const est =
      PROFILE_DIR === undefined
        ? startProcess(name, script, [], estEnv)
        : startCommand(name, process.execPath, ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}${round}.cpuprofile`, script], { ...process.env, ...estEnv });
    procs.push(est);
    const d = await drain(controlKeys({ prefix: pfx }).outcomes, est.waitForLine((l) => l.includes('estimator ready'), 20_000), est.proc.pid);
    const killed = Number((await redis.hget(controlKeys({ prefix: pfx }).kill, 'version')) ?? 0);
    await est.stop();
    return { d, killed };
  };
  if (COMPARE === undefined) {
    const e = await runEstimator('estimator-tp', ESTIMATOR, prefix);
    return { rawMs: rawD.ms, estMs: e.d.ms, killed: e.killed, cpu: { raw: rawD, estimator: e.d } };
  }
  // Before/after: this build's estimator and the one at COMPARE, in alternating order.
  let e;
  let c;
  if (round % 2 === 0) {
    e = await runEstimator('estimator-tp', ESTIMATOR, prefix);
    c = await runEstimator('estimator-cmp', COMPARE, `${prefix}:cmp`);
  } else {
    c = await runEstimator('estimator-cmp', COMPARE, `${prefix}:cmp`);
    e = await runEstimator('estimator-tp', ESTIMATOR, prefix);
  }
  return { rawMs: rawD.ms, estMs: e.d.ms, killed: e.killed + c.killed, cpu: { raw: rawD, estimator: e.d }, compare: { ms: c.d.ms, cpu: c.d } };
}

/** ROUNDS rounds; the ratio reported is the median of the per-round ratios. */
async function throughputPart() {
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await throughputRound(i);
    rounds.push({ ...r, ratio: r.rawMs / r.estMs });
    console.log(
      `throughput round ${i + 1}/${ROUNDS}: estimator ${Math.round(OUTCOMES / (r.estMs / 1000))}/s, raw ${Math.round(OUTCOMES / (r.rawMs / 1000))}/s, ratio ${round(r.rawMs / r.estMs, 3)}; ` +
        `CPU µs/outcome estimator ${round(r.cpu.estimator.cpuUsPerOutcome, 1)} + Redis ${round(r.cpu.estimator.redisCpuUsPerOutcome, 1)}, raw ${round(r.cpu.raw.cpuUsPerOutcome, 1)} + Redis ${round(r.cpu.raw.redisCpuUsPerOutcome, 1)}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    );
    if (r.compare !== undefined) {
      console.log(
        `  compared estimator (${COMPARE}): ${Math.round(OUTCOMES / (r.compare.ms / 1000))}/s, ratio ${round(r.rawMs / r.compare.ms, 3)}; CPU µs/outcome ${round(r.compare.cpu.cpuUsPerOutcome, 1)} + Redis ${round(r.compare.cpu.redisCpuUsPerOutcome, 1)}`,
      );
    }
    if (process.argv.includes('--commands')) {
      console.log(`  Redis µs/outcome by command (estimator drain): ${JSON.stringify(r.cpu.estimator.commands)}`);
      if (r.compare !== undefined) console.log(`  Redis µs/outcome by command (compared estimator drain): ${JSON.stringify(r.compare.cpu.commands)}`);
    }
  }
  const med = [...rounds].sort((x, y) => x.ratio - y.ratio)[Math.floor((rounds.length - 1) / 2)];
  return {
    outcomes: OUTCOMES,
    warmup: WARMUP,
    classes: CLASSES,
    batch: BATCH,
    rounds: rounds.length,
    estimatorOutcomesPerSec: Math.round(OUTCOMES / (med.estMs / 1000)),
    baselineRawReadAckPerSec: Math.round(OUTCOMES / (med.rawMs / 1000)),
    ratioEstimatorToBaseline: round(med.ratio, 3),
    ratioPerRound: rounds.map((r) => round(r.ratio, 3)),
    cpuPerRound: rounds.map((r) => ({
      estimatorProcess: round(r.cpu.estimator.cpuUsPerOutcome, 1),
      redisDuringEstimator: round(r.cpu.estimator.redisCpuUsPerOutcome, 1),
      rawProcess: round(r.cpu.raw.cpuUsPerOutcome, 1),
      redisDuringRaw: round(r.cpu.raw.redisCpuUsPerOutcome, 1),
    })),
    redisCommandsPerOutcome: { estimator: med.cpu.estimator.commands, raw: med.cpu.raw.commands },
    ...(COMPARE === undefined
      ? {}
      : {
          compared: {
            estimator: COMPARE,
            ratioPerRound: rounds.map((r) => round(r.rawMs / r.compare.ms, 3)),
            ratioMedian: round([...rounds].map((r) => r.rawMs / r.compare.ms).sort((x, y) => x - y)[Math.floor((rounds.length - 1) / 2)], 3),
            cpuPerRound: rounds.map((r) => ({ estimatorProcess: round(r.compare.cpu.cpuUsPerOutcome, 1), redisDuringEstimator: round(r.compare.cpu.redisCpuUsPerOutcome, 1) })),
            redisCommandsPerOutcome: med.compare.cpu.commands,
          },
        }),
    estimatorMs: Math.round(med.estMs),
    baselineMs: Math.round(med.rawMs),
    falseAlarmsDuringThroughput: rounds.reduce((s, r) => s + r.killed, 0),
    // CPU per outcome (µs) in the median round: less sensitive to the machine's load than wall time.
    cpuUsPerOutcome: {
      estimatorProcess: round(med.cpu.estimator.cpuUsPerOutcome, 1),
      redisDuringEstimator: round(med.cpu.estimator.redisCpuUsPerOutcome, 1),
      rawProcess: round(med.cpu.raw.cpuUsPerOutcome, 1),
      redisDuringRaw: round(med.cpu.raw.redisCpuUsPerOutcome, 1),
    },
  };
}

const throughputHeadline = (t) =>
  `one estimator absorbs ${t.estimatorOutcomesPerSec} outcomes/s vs ${t.baselineRawReadAckPerSec}/s raw XREADGROUP+XACK (ratio ${t.ratioEstimatorToBaseline}, median of ${t.rounds} rounds, batch ${t.batch}, ${t.classes} classes${t.warmup > 0 ? `, after ${t.warmup} warm-up outcomes` : ''}); CPU µs per outcome: estimator ${t.cpuUsPerOutcome.estimatorProcess} + Redis ${t.cpuUsPerOutcome.redisDuringEstimator}, raw loop ${t.cpuUsPerOutcome.rawProcess} + Redis ${t.cpuUsPerOutcome.redisDuringRaw}` +
  (t.compared === undefined ? '' : `; compared estimator: ratio ${t.compared.ratioMedian} (per round ${t.compared.ratioPerRound.join(', ')}; this build ${t.ratioPerRound.join(', ')})`);

if (ONLY === 'throughput') {
  try {
    const throughput = await throughputPart();
    const previous = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : { benchmark: 'drift' };
    const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg() };
    console.log(throughputHeadline(throughput));
    mkdirSync(dirname(resultsFile), { recursive: true });
    writeFileSync(resultsFile, `${JSON.stringify({ ...previous, throughput, throughputAt: new Date().toISOString(), throughputMachine: machine }, null, 2)}\n`);
  } finally {
    await cleanup();
  }
  process.exit();
}

try {
  // ---- 1. alarm → pause ---------------------------------------------------------------------
  const prefix = `bench:drift:${process.pid}`;
  const ks = { prefix };
  const est = startProcess('estimator', ESTIMATOR, [], {
    REDIS_URL: url, GAMBIT_PREFIX: prefix, ESTIMATOR_ID: 'bench-est', ESTIMATOR_AUTO_GLOBAL_CLASSES: '0', LOG_LEVEL: 'error',
  });
  procs.push(est);
  const kids = Array.from({ length: CHILDREN }, (_, i) => {
    const p = startProcess(`cp${i}`, join(here, 'cp-child.mjs'), [], { REDIS_URL: url, GAMBIT_PREFIX: prefix });
    procs.push(p);
    return p;
  });
  await Promise.all(kids.map((k) => k.waitForLine((l) => l.includes('"type":"ready"'), 20_000)));
  const cp = new ControlPlane(url, ks, systemClock, silentLogger);
  await cp.ready();
  const seen = (p, id) => p.lines.map((l) => (l.startsWith('{') ? JSON.parse(l) : {})).find((o) => o.type === 'kill' && o.id === id);
  const latencies = [];
  const perChild = [];
  for (let i = 0; i < ALARMS; i++) {
    const id = `c${i}`;
    await cp.ensureClass(id, { depType: 'passthrough', prior: { a: 180, b: 20 }, initialStage: 'online', tenant: 'bench' });
    const pipe = redis.pipeline();
    // The detector compares recent outcomes with the class's own history (M9.5): 60 hits of
    // history, then 30 misses (the alarm comes within the first 8-12 of them).
    for (let j = 0; j < 60; j++) pipe.xadd(controlKeys(ks).outcomes, '*', 'outcome', outcome(id, 'hit'));
    for (let j = 0; j < 30; j++) pipe.xadd(controlKeys(ks).outcomes, '*', 'outcome', outcome(id, 'miss'));
    await pipe.exec();
    await until(() => kids.every((k) => seen(k, id) !== undefined), 20_000, `kill of ${id} seen by all children`);
    const entry = JSON.parse((await redis.hget(controlKeys(ks).kill, 'classes')) ?? '{}')[id];
    const ts = kids.map((k) => seen(k, id).t - entry.atMs);
    if (!kids.every((k) => seen(k, id).blocked)) throw new Error(`a child applied ${id} but did not report blocked`);
    latencies.push(Math.max(...ts));
    perChild.push(...ts);
    await sleep(20);
  }
  await cp.close();
  await est.stop();
  const throughput = await throughputPart();

  const result = {
    benchmark: 'drift',
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg() },
    clock: 'wall-clock ms on one machine (Date.now for the kill entry atMs, performance.timeOrigin+now in the children)',
    alarmToPause: {
      alarms: ALARMS,
      children: CHILDREN,
      lastChildMs: { p50: round(q(latencies, 0.5)), p99: round(q(latencies, 0.99)), max: round(Math.max(...latencies)) },
      anyChildMs: { p50: round(q(perChild, 0.5)), p99: round(q(perChild, 0.99)) },
    },
    throughput,
  };
  result.headline = [
    `alarm → last of ${CHILDREN} schedulers paused: p50 ${result.alarmToPause.lastChildMs.p50} ms, p99 ${result.alarmToPause.lastChildMs.p99} ms over ${ALARMS} alarms`,
    throughputHeadline(result.throughput),
  ];
  result.detectors = detectorPart();
  console.log(JSON.stringify({ ...result, detectors: result.detectors.verdict }, null, 2));
  mkdirSync(join(here, '..', 'results'), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await cleanup();
}
