// Runtime benchmark (docs/runtime.md): throughput of the whole system (scheduler + worker
// processes, real Redis, BullMQ) on zero-latency simulated operations, next to raw BullMQ
// add-and-process of the same number of jobs measured in the same run (the ratio), and the
// scheduling latency the system adds per node: node ready (its last upstream's attempt finished,
// or the run was created) -> its job started (attempt.startedAtMs), p50 and p99.
//
// Usage: node bench/runtime/run.mjs [--runs 150] [--chain 3] [--workers 1] [--concurrency 8] [--idle-runs 20]
//        [--warmup-runs 0] [--monitor]
// Writes bench/results/runtime.json. Needs `pnpm exec turbo run build` first.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queuePrefix, runKeys } from '@gambit/shared/redis';
import { startProcess, startRedis, uniquePrefix } from '@gambit/testkit';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const RUNS = arg('runs', 150);
const CHAIN = arg('chain', 3);
const WORKERS = arg('workers', 1);
const CONCURRENCY = arg('concurrency', 8);
const OPS = RUNS * CHAIN;
const IDLE_RUNS = arg('idle-runs', 20);
const WARMUP_RUNS = arg('warmup-runs', 0);
const MONITOR = process.argv.includes('--monitor');

const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function chainWorkflow(n) {
  const nodes = [];
  const edges = [];
  for (let i = 0; i < n; i++) {
    nodes.push({
      id: `n${i}`,
      kind: 'llm',
      provider: 'simulated',
      model: 'gpt-4o-mini',
      prompt: i === 0 ? 'start {{inputs.q}}' : `next {{nodes.n${i - 1}.output}}`,
      expectedOutputTokens: 1,
      maxTokens: 4,
      simulate: { output: `out${i}`, ttftMs: 0 },
    });
    if (i > 0) edges.push({ from: `n${i - 1}`, to: `n${i}`, type: 'passthrough' });
  }
  return { name: 'benchchain', nodes, edges };
}

/** CPU time (ms, user + system) a process has used so far, from /proc (Linux); undefined elsewhere. */
function cpuMs(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Redis `INFO commandstats` as { command: calls } (every client of the server, all processes). */
async function commandStats(redis) {
  const out = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Redis commands per operation between two snapshots (the bench's own status polling included). */
function perOp(before, after, ops) {
  const d = {};
  let total = 0;
  for (const [k, v] of Object.entries(after)) {
    const n = v - (before[k] ?? 0);
    if (n > 0) {
      d[k] = Number((n / ops).toFixed(2));
      total += n;
    }
  }
  return { total: Number((total / ops).toFixed(1)), byCommand: Object.fromEntries(Object.entries(d).sort((a, b) => b[1] - a[1])) };
}

async function rawBullmq(redisUrl, jobs) {
  const ks = { prefix: uniquePrefix('bench-raw').replace(/:/g, '_') };
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('raw', { connection, prefix: queuePrefix(ks) });
  let done = 0;
  let resolveAll;
  const all = new Promise((r) => {
    resolveAll = r;
  });
  const worker = new Worker(
    'raw',
    async () => {
      done++;
      if (done === jobs) resolveAll();
    },
    { connection, prefix: queuePrefix(ks), concurrency: CONCURRENCY * WORKERS, removeOnComplete: { count: 0 } },
  );
  await worker.waitUntilReady();
  const statsBefore = await commandStats(connection);
  const t0 = performance.now();
  for (let i = 0; i < jobs; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(jobs, i + 100); j++) batch.push(queue.add('op', { i: j }, { jobId: `raw-${j}` }));
    await Promise.all(batch);
  }
  await all;
  const ms = performance.now() - t0;
  const commandsPerOp = perOp(statsBefore, await commandStats(connection), jobs);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
  return { jobs, durationMs: ms, opsPerSec: (jobs * 1000) / ms, commandsPerOp };
}

async function system(redisUrl) {
  const prefix = uniquePrefix('bench-rt').replace(/:/g, '_');
  const env = { REDIS_URL: redisUrl, GAMBIT_PREFIX: prefix, LOG_LEVEL: 'warn' };
  const procs = [];
  // The scheduler's API secrets (docs/security.md); the benchmark acts as the operator.
  const adminKey = `adm_${randomBytes(32).toString('base64url')}`;
  const auth = { authorization: `Bearer ${adminKey}` };
  const scheduler = startProcess('scheduler', join(ROOT, 'services/scheduler/dist/main.js'), [], {
    ...env,
    GAMBIT_ADMIN_KEY: adminKey,
    GAMBIT_KEY_HMAC_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'info',
    PORT: '0',
    REQUIRE_ESTIMATOR_HEARTBEAT: 'false',
    ADVANCE_CONCURRENCY: String(CONCURRENCY),
  });
  procs.push(scheduler);
  try {
    const line = await scheduler.waitForLine((l) => l.includes('"scheduler listening"'), 30_000);
    const url = `http://127.0.0.1:${JSON.parse(line).port}`;
    for (let i = 0; i < WORKERS; i++) {
      const w = startProcess(`worker-${i}`, join(ROOT, 'services/worker/dist/main.js'), [], {
        ...env,
        LOG_LEVEL: 'info',
        GAMBIT_SIM_TIME_SCALE: '0',
        WORKER_CONCURRENCY: String(CONCURRENCY),
        WORKER_SPEC_CONCURRENCY: '0',
      });
      procs.push(w);
      await w.waitForLine((l) => l.includes('"worker ready"'), 30_000);
    }
    const tenant = 'bench';
    const wf = chainWorkflow(CHAIN);
    const reg = await fetch(`${url}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ tenant, workflow: wf }) });
    if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
    const redis = new Redis(redisUrl);
    const ks = { prefix };
    // --warmup-runs N: N runs submitted and finished before the measured phase, so the measured
    // numbers are the steady state (JIT-compiled code, scripts loaded into Redis), not start-up.
    for (let w = 0; w < WARMUP_RUNS; w += 16) {
      const batch = [];
      for (let j = w; j < Math.min(WARMUP_RUNS, w + 16); j++)
        batch.push(
          fetch(`${url}/v1/runs`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...auth },
            body: JSON.stringify({ tenant, workflow: 'benchchain', inputs: { q: `warm${j}` }, speculation: false }),
          }).then(async (r) => (await r.json()).runId),
        );
      for (const id of await Promise.all(batch))
        while ((await redis.hget(runKeys(ks, tenant, id).run, 'status')) === 'running') await sleep(5);
    }
    const ids = [];
    const statsBefore = await commandStats(redis);
    const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    const cpuPids = { scheduler: scheduler.proc.pid, workers: procs.slice(1).map((p) => p.proc.pid), redis: redisPid };
    const cpuOf = () => ({
      scheduler: cpuMs(cpuPids.scheduler),
      workers: cpuPids.workers.reduce((a, pid) => a + (cpuMs(pid) ?? 0), 0),
      redis: cpuMs(cpuPids.redis),
      bench: process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000,
    });
    const cpuBefore = cpuOf();
    // --monitor: every command the services send (not the bench's own polling), client vs Lua.
    const monConn = MONITOR ? redis.duplicate() : undefined;
    const monitor = monConn === undefined ? undefined : await monConn.monitor();
    const monitored = new Map();
    monitor?.on('monitor', (_t, args, source) => {
      const cmd = String(args[0]).toLowerCase();
      const first = cmd === 'evalsha' ? ` ${String(args[1]).slice(0, 8)} ${String(args[3] ?? '').replace(/^[^:]*:/, '').replace(/[0-9a-f-]{8,}|\{[^}]*\}/g, '*')}` : '';
      const k = `${source === 'lua' ? 'lua   ' : 'client'} ${cmd}${first}${cmd === 'hget' && args[2] === 'status' ? ' (status poll)' : ''}`;
      monitored.set(k, (monitored.get(k) ?? 0) + 1);
    });
    const t0 = performance.now();
    let next = 0;
    const submitOne = async () => {
      while (next < RUNS) {
        const i = next++;
        const r = await fetch(`${url}/v1/runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth },
          body: JSON.stringify({ tenant, workflow: 'benchchain', inputs: { q: String(i) }, speculation: false }),
        });
        if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${await r.text()}`);
        ids.push((await r.json()).runId);
      }
    };
    await Promise.all(Array.from({ length: 16 }, submitOne));
    for (;;) {
      const pipe = redis.pipeline();
      for (const id of ids) pipe.hget(runKeys(ks, tenant, id).run, 'status');
      const statuses = (await pipe.exec()).map(([, v]) => v);
      const failed = statuses.filter((s) => s === 'failed' || s === 'cancelled').length;
      if (failed > 0) throw new Error(`${failed} runs did not succeed`);
      if (statuses.every((s) => s === 'succeeded')) break;
      if (performance.now() - t0 > 300_000) throw new Error('runs did not finish in 300 s');
      await sleep(20);
    }
    const ms = performance.now() - t0;
    const commandsPerOp = perOp(statsBefore, await commandStats(redis), OPS);
    const cpuAfter = cpuOf();
    // CPU each process used during the loaded phase, as a share of its wall time (1 = one core).
    const cpuShare = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, cpuAfter[k] === undefined ? null : Number(((cpuAfter[k] - cpuBefore[k]) / ms).toFixed(2))]));
    // ... and per operation (ms of CPU): less sensitive than ops/s to other load on the machine.
    const cpuMsPerOp = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, cpuAfter[k] === undefined ? null : Number(((cpuAfter[k] - cpuBefore[k]) / OPS).toFixed(2))]));
    if (monitor !== undefined) {
      monitor.disconnect();
      monConn?.disconnect();
      console.error([...monitored].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${(v / OPS).toFixed(2).padStart(7)} ${k}`).join('\n'));
    }
    // Scheduling latency per node: ready -> started.
    const latencies = [];
    for (const id of ids) {
      const k = runKeys(ks, tenant, id);
      const [created, attemptsRaw] = await Promise.all([redis.hget(k.run, 'createdAtMs'), redis.hgetall(k.attempts)]);
      const byNode = new Map(Object.values(attemptsRaw).map((j) => JSON.parse(j)).map((a) => [a.nodeId, a]));
      for (let i = 0; i < CHAIN; i++) {
        const a = byNode.get(`n${i}`);
        const ready = i === 0 ? Number(created) : byNode.get(`n${i - 1}`)?.finishedAtMs;
        if (a?.startedAtMs !== undefined && ready !== undefined) latencies.push(a.startedAtMs - ready);
      }
    }
    // The same latency with one run in flight at a time: the system's own overhead, no queueing.
    const idle = [];
    for (let i = 0; i < IDLE_RUNS; i++) {
      const r = await fetch(`${url}/v1/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({ tenant, workflow: 'benchchain', inputs: { q: `idle${i}` }, speculation: false }),
      });
      const id = (await r.json()).runId;
      const k = runKeys(ks, tenant, id);
      while ((await redis.hget(k.run, 'status')) === 'running') await sleep(5);
      const [created, attemptsRaw] = await Promise.all([redis.hget(k.run, 'createdAtMs'), redis.hgetall(k.attempts)]);
      const byNode = new Map(Object.values(attemptsRaw).map((j) => JSON.parse(j)).map((a) => [a.nodeId, a]));
      for (let j = 0; j < CHAIN; j++) {
        const a = byNode.get(`n${j}`);
        const ready = j === 0 ? Number(created) : byNode.get(`n${j - 1}`)?.finishedAtMs;
        if (a?.startedAtMs !== undefined && ready !== undefined) idle.push(a.startedAtMs - ready);
      }
    }
    await redis.quit();
    return { runs: RUNS, ops: OPS, durationMs: ms, opsPerSec: (OPS * 1000) / ms, latencies, idle, commandsPerOp, cpuShare, cpuMsPerOp };
  } finally {
    await Promise.all(procs.map((p) => p.stop(10_000)));
  }
}

const redisSrv = await startRedis();
try {
  const sys = await system(redisSrv.url);
  const raw = await rawBullmq(redisSrv.url, OPS);
  const result = {
    headline: `${sys.opsPerSec.toFixed(0)} ops/s through scheduler+worker vs ${raw.opsPerSec.toFixed(0)} ops/s raw BullMQ (ratio ${(sys.opsPerSec / raw.opsPerSec).toFixed(3)}); scheduling latency per node p50 ${pct(sys.latencies, 50)} ms, p99 ${pct(sys.latencies, 99)} ms under load (${RUNS} runs at once${WARMUP_RUNS > 0 ? `, after ${WARMUP_RUNS} warm-up runs` : ''}), p50 ${pct(sys.idle, 50)} ms, p99 ${pct(sys.idle, 99)} ms one run at a time`,
    config: { runs: RUNS, warmupRuns: WARMUP_RUNS, chainLength: CHAIN, workers: WORKERS, workerConcurrency: CONCURRENCY, advanceConcurrency: CONCURRENCY, simTimeScale: 0 },
    system: { ops: sys.ops, durationMs: Math.round(sys.durationMs), opsPerSec: Number(sys.opsPerSec.toFixed(1)), cpuShare: sys.cpuShare, cpuMsPerOp: sys.cpuMsPerOp, redisCommandsPerOp: sys.commandsPerOp },
    rawBullmq: { jobs: raw.jobs, durationMs: Math.round(raw.durationMs), opsPerSec: Number(raw.opsPerSec.toFixed(1)), redisCommandsPerOp: raw.commandsPerOp },
    ratio: Number((sys.opsPerSec / raw.opsPerSec).toFixed(4)),
    schedulingLatencyMs: { n: sys.latencies.length, p50: pct(sys.latencies, 50), p99: pct(sys.latencies, 99), max: pct(sys.latencies, 100) },
    schedulingLatencyOneRunAtATimeMs: { n: sys.idle.length, p50: pct(sys.idle, 50), p99: pct(sys.idle, 99), max: pct(sys.idle, 100) },
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  };
  console.log(JSON.stringify(result, null, 2));
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'runtime.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await redisSrv.stop();
}
