// Memory benchmark (issue 13, "Redis ≤ 6 KiB per in-flight four-node run and ≤ 3 KiB kept per
// ended run (outputs off)"; docs/runtime.md, "Memory per run").
//
// Starts the real scheduler and worker processes on one real redis-server with the simulated
// provider, and runs N four-node fan-out/join runs (a -> b, c -> d). Nodes a, b and c are instant;
// node d sleeps `--hold-ms` (GAMBIT_SIM_TIME_SCALE=1), so every run is held in flight with three
// nodes done and its last node running. Then it measures:
// - bytes per in-flight run: the rise of INFO memory `used_memory` from before the first submit,
//   divided by N, and MEMORY USAGE of every key under the benchmark's prefix summed by key family
//   (run id, tenant and job id replaced by placeholders), divided by N;
// - bytes kept per ended run, the same way once every run has ended and every attempt is settled.
// The ended phase is measured twice, on two tenants: outputs off (PUT /v1/tenants/:t/config
// `keepOutputs: false`) and outputs on (`keepOutputs: true`, the tenant default). "Ended" is once
// every run has been folded into its compact record (issue 13 item 3): the active index is empty
// only after the fold.
//
// Targets (issue 13, fixed before measuring): in-flight ≤ 6 KiB per run; kept ≤ 3 KiB per ended run
// with outputs off. Both are checked on the used_memory delta (what Redis really holds, allocator
// overhead and shared structures included). The script exits 1 when a target is missed.
//
// Usage: node bench/memory/run.mjs [--runs 200] [--hold-ms 20000]
// Writes bench/results/memory.json. Needs `pnpm exec turbo run build` first.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeNode, runKeys } from '@gambit/shared/redis';
import { startProcess, startRedis, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const RUNS = arg('runs', 200);
const HOLD_MS = arg('hold-ms', 20000);
const TARGETS = { inFlightBytesPerRun: 6 * 1024, keptBytesPerEndedRunOutputsOff: 3 * 1024 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const sim = (id, prompt, output, ttftMs) => ({
  id,
  kind: 'llm',
  provider: 'simulated',
  model: 'gpt-4o-mini',
  prompt,
  expectedOutputTokens: 8,
  maxTokens: 32,
  simulate: { output, ttftMs },
});

/** a -> (b, c) -> d; d is slow so that each run is held in flight with three nodes done. */
const WORKFLOW = {
  name: 'benchmemory',
  nodes: [
    sim('a', 'Plan the answer to the customer question: {{inputs.q}}', 'A short plan of three steps for the reply.', 0),
    sim('b', 'Draft the first half following {{nodes.a.output}}', 'The first half of a reply, a sentence or two long.', 0),
    sim('c', 'Draft the second half following {{nodes.a.output}}', 'The second half of a reply, a sentence or two long.', 0),
    sim('d', 'Join {{nodes.b.output}} and {{nodes.c.output}} into one reply', 'The joined reply to the customer, ready to send.', HOLD_MS),
  ],
  edges: [
    { from: 'a', to: 'b', type: 'passthrough' },
    { from: 'a', to: 'c', type: 'passthrough' },
    { from: 'b', to: 'd', type: 'passthrough' },
    { from: 'c', to: 'd', type: 'passthrough' },
  ],
};

async function usedMemory(redis) {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

/** MEMORY STATS as a flat { name: bytes } (numbers only; per-db entries as db.N.name). */
async function memoryStats(redis) {
  const flat = {};
  const walk = (arr, pre) => {
    for (let i = 0; i + 1 < arr.length; i += 2) {
      const v = arr[i + 1];
      if (Array.isArray(v)) walk(v, `${pre}${arr[i]}.`);
      else if (typeof v === 'number') flat[`${pre}${arr[i]}`] = v;
    }
  };
  walk(await redis.call('MEMORY', 'STATS'), '');
  return flat;
}

/** Where the used_memory rise went beyond the keys (MEMORY STATS deltas per run, the larger ones). */
function statsPerRun(after, before, runs) {
  const out = {};
  for (const [k, v] of Object.entries(after)) {
    if (!/^(overhead\.|clients\.|aof\.|lua\.|functions\.|db\.|dataset\.bytes|keys\.count|replication\.|startup)/.test(k)) continue;
    const d = Math.round((v - (before[k] ?? 0)) / runs);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** A key's family: prefix, tenant, run id and job id replaced by placeholders. */
function familyOf(key, prefix) {
  let k = key.startsWith(`{${prefix}:q}`) ? `{P:q}${key.slice(prefix.length + 4)}` : key.startsWith(`${prefix}:`) ? `P:${key.slice(prefix.length + 1)}` : key;
  k = k.replace(/\{run:[^}]+\}/, '{run:T:R}').replace(/\{tenant:[^}]+\}/, '{tenant:T}').replace(/\{op:[^}]+\}/, '{op:T:K}').replace(/\{class:[^}]+\}/, '{class:C}');
  k = k.replace(/:staging:.*$/, ':staging:A');
  // BullMQ job keys: {P:q}:<queue>:<tenant>~<run>~<attempt>[:lock|:logs|...]
  k = k.replace(/^(\{P:q\}:[^:]+:)[^:]*~[^:]*~[^:]*/, '$1<job>');
  return k;
}

/**
 * MEMORY USAGE of every key under the prefix, summed by family: { family: { keys, bytes } }. On a
 * connection of its own, closed after: its pipelines' buffers must not count in the next
 * used_memory reading.
 */
async function keyFamilies(url, prefix) {
  const redis = new Redis(url);
  try {
    return await keyFamiliesOn(redis, prefix);
  } finally {
    await redis.quit();
  }
}

async function keyFamiliesOn(redis, prefix) {
  const out = {};
  for (const pattern of [`${prefix}:*`, `{${prefix}:q}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      const pipe = redis.pipeline();
      for (const k of keys) pipe.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
      const sizes = await pipe.exec();
      keys.forEach((k, i) => {
        const f = familyOf(k, prefix);
        if (out[f] === undefined) out[f] = { keys: 0, bytes: 0 };
        const e = out[f];
        e.keys++;
        e.bytes += Number(sizes[i][1] ?? 0);
      });
    } while (cursor !== '0');
  }
  return out;
}

/** Families' bytes per run (the difference from a baseline), largest first. */
function perRun(after, before, runs) {
  const rows = [];
  for (const [f, v] of Object.entries(after)) {
    const b = before[f] ?? { keys: 0, bytes: 0 };
    const bytes = v.bytes - b.bytes;
    if (bytes !== 0 || v.keys !== b.keys) rows.push({ family: f, keysPerRun: Number(((v.keys - b.keys) / runs).toFixed(2)), bytesPerRun: Math.round(bytes / runs) });
  }
  rows.sort((x, y) => y.bytesPerRun - x.bytesPerRun);
  return { totalBytesPerRun: rows.reduce((a, r) => a + r.bytesPerRun, 0), families: rows };
}

function table(title, pr, stats) {
  const lines = [`${title}: ${pr.totalBytesPerRun} bytes/run by MEMORY USAGE`];
  for (const r of pr.families) lines.push(`  ${String(r.bytesPerRun).padStart(7)} B  ${String(r.keysPerRun).padStart(5)} keys  ${r.family}`);
  if (stats !== undefined) lines.push(`  MEMORY STATS per run: ${Object.entries(stats).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return lines.join('\n');
}

async function main(redisUrl) {
  const prefix = uniquePrefix('bench-mem').replace(/:/g, '_');
  const env = { REDIS_URL: redisUrl, GAMBIT_PREFIX: prefix, LOG_LEVEL: 'warn' };
  const adminKey = `adm_${randomBytes(32).toString('base64url')}`;
  const auth = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
  const procs = [];
  const redis = new Redis(redisUrl);
  try {
    const scheduler = startProcess('scheduler', join(ROOT, 'services/scheduler/dist/main.js'), [], {
      ...env,
      GAMBIT_ADMIN_KEY: adminKey,
      GAMBIT_KEY_HMAC_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'info',
      PORT: '0',
      REQUIRE_ESTIMATOR_HEARTBEAT: 'false',
      // Admission must let every run in at once.
      TENANT_RATE_PER_SEC: '100000',
      TENANT_MAX_IN_FLIGHT_RUNS: String(RUNS * 4),
    });
    procs.push(scheduler);
    const line = await scheduler.waitForLine((l) => l.includes('"scheduler listening"'), 30_000);
    const url = `http://127.0.0.1:${JSON.parse(line).port}`;
    const worker = startProcess('worker', join(ROOT, 'services/worker/dist/main.js'), [], {
      ...env,
      LOG_LEVEL: 'info',
      GAMBIT_SIM_TIME_SCALE: '1',
      // Every run's slow node runs at once.
      WORKER_CONCURRENCY: String(RUNS + 8),
      WORKER_SPEC_CONCURRENCY: '0',
    });
    procs.push(worker);
    await worker.waitForLine((l) => l.includes('"worker ready"'), 30_000);

    const api = async (method, path, body) => {
      const r = await fetch(`${url}${path}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      return { status: r.status, body: text === '' ? undefined : JSON.parse(text) };
    };

    /** One measured phase on a fresh tenant: N runs held in flight, then ended. */
    const phase = async (tenant, keepOutputs) => {
      // Each phase sets keepOutputs explicitly (the tenant default is on).
      const r = await api('PUT', `/v1/tenants/${tenant}/config`, { keepOutputs });
      if (r.status !== 200) throw new Error(`keepOutputs ${keepOutputs}: tenant config failed: ${r.status} ${JSON.stringify(r.body)}`);
      const keepOutputsApplied = keepOutputs;
      const reg = await api('POST', '/v1/workflows', { tenant, workflow: WORKFLOW });
      if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
      // One warm-up run, so per-tenant and per-class keys created once exist in the baseline.
      const warm = await api('POST', '/v1/runs', { tenant, workflow: WORKFLOW.name, inputs: { q: 'warm-up' }, speculation: false });
      if (warm.status !== 201) throw new Error(`submit failed: ${warm.status} ${JSON.stringify(warm.body)}`);
      await waitEnded(tenant, [warm.body.runId]);
      await settleQuiet();
      const memBefore = await usedMemory(redis);
      const statsBefore = await memoryStats(redis);
      const famBefore = await keyFamilies(redisUrl, prefix);
      const ids = [];
      let next = 0;
      const submitter = async () => {
        while (next < RUNS) {
          const i = next++;
          const r = await api('POST', '/v1/runs', { tenant, workflow: WORKFLOW.name, inputs: { q: `Where is my order number ${100000 + i}? It was due last week.` }, speculation: false });
          if (r.status !== 201) throw new Error(`submit failed: ${r.status} ${JSON.stringify(r.body)}`);
          ids.push(r.body.runId);
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 16 }, submitter));
      // Held: every run's d running (a, b, c done). Polled on a connection of its own, closed
      // before measuring: the poll's pipelines leave query and reply buffers on the server that
      // would count in used_memory (clients.normal) as if the runs held them.
      const poll = new Redis(redisUrl);
      for (;;) {
        const pipe = poll.pipeline();
        for (const id of ids) pipe.hget(runKeys({ prefix }, tenant, id).nodes, 'd');
        const ds = (await pipe.exec()).map(([, v]) => (v === null ? undefined : decodeNode(v).state));
        if (ds.every((s) => s === 'running')) break;
        if (ds.some((s) => s === 'succeeded')) throw new Error(`a run finished before all were held: raise --hold-ms (now ${HOLD_MS})`);
        if (performance.now() - t0 > HOLD_MS * 0.8) throw new Error(`runs not all held within ${Math.round(HOLD_MS * 0.8)} ms (d states: ${JSON.stringify(Object.fromEntries([...new Set(ds)].map((x) => [x, ds.filter((y) => y === x).length])))}): raise --hold-ms (now ${HOLD_MS})`);
        await sleep(50);
      }
      await poll.quit();
      await sleep(200);
      const memHeld = await usedMemory(redis);
      const statsHeld = await memoryStats(redis);
      const famHeld = await keyFamilies(redisUrl, prefix);
      if (process.argv.includes('--dump')) {
        // --dump: one held run's keys and its running job, raw (to see what an in-flight run holds).
        const k = runKeys({ prefix }, tenant, ids[0]);
        const jobKeys = (await redis.keys(`{${prefix}:q}:ops:${tenant}~${ids[0]}~*`)).sort();
        const jobs = {};
        for (const jk of jobKeys) jobs[jk] = (await redis.type(jk)) === 'hash' ? await redis.hgetall(jk) : await redis.get(jk);
        const sizes = {};
        for (const key of [k.run, k.nodes, k.attempts, k.decisions, ...jobKeys]) sizes[key] = await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
        const dump = { run: await redis.hgetall(k.run), nodes: await redis.hgetall(k.nodes), attempts: await redis.hgetall(k.attempts), decisions: await redis.lrange(k.decisions, 0, -1), jobs, sizes, encodings: { run: await redis.object('ENCODING', k.run), nodes: await redis.object('ENCODING', k.nodes), attempts: await redis.object('ENCODING', k.attempts) } };
        console.error(`in flight, run ${ids[0]}:\n${JSON.stringify(dump, null, 1)}`);
      }
      await waitEnded(tenant, ids);
      await settleQuiet();
      const memEnded = await usedMemory(redis);
      const statsEnded = await memoryStats(redis);
      const famEnded = await keyFamilies(redisUrl, prefix);
      if (process.argv.includes('--dump')) {
        // --dump: one ended run's keys, raw (to see what is kept).
        const k = runKeys({ prefix }, tenant, ids[0]);
        const dump = { run: await redis.hgetall(k.run), rec: await redis.get(k.rec), nodes: await redis.hgetall(k.nodes), attempts: await redis.hgetall(k.attempts), decisions: await redis.lrange(k.decisions, 0, -1), outcomes: await redis.lrange(k.outcomes, 0, -1), effects: await redis.lrange(k.effects, 0, -1) };
        console.error(JSON.stringify(dump, null, 1));
      }
      return {
        tenant,
        keepOutputs: keepOutputsApplied,
        inFlight: { usedMemoryBytesPerRun: Math.round((memHeld - memBefore) / RUNS), byFamily: perRun(famHeld, famBefore, RUNS), memoryStatsPerRun: statsPerRun(statsHeld, statsBefore, RUNS) },
        ended: { usedMemoryBytesPerRun: Math.round((memEnded - memBefore) / RUNS), byFamily: perRun(famEnded, famBefore, RUNS), memoryStatsPerRun: statsPerRun(statsEnded, statsBefore, RUNS) },
      };
    };

    const waitEnded = async (tenant, ids) => {
      const deadline = performance.now() + HOLD_MS + 120_000;
      const poll = new Redis(redisUrl);
      try {
        await waitEndedOn(poll, tenant, ids, deadline);
      } finally {
        await poll.quit();
      }
    };
    const waitEndedOn = async (poll, tenant, ids, deadline) => {
      for (;;) {
        const pipe = poll.pipeline();
        for (const id of ids) pipe.hget(runKeys({ prefix }, tenant, id).run, 'status');
        const st = (await pipe.exec()).map(([, v]) => v);
        const bad = st.filter((s) => s !== 'running' && s !== 'succeeded');
        if (bad.length > 0) throw new Error(`${bad.length} runs did not succeed: ${bad.slice(0, 3).join(', ')}`);
        if (st.every((s) => s === 'succeeded')) return;
        if (performance.now() > deadline) throw new Error('runs did not end in time');
        await sleep(100);
      }
    };
    // After the runs end: the ended pass, outcome settlement and the estimator's reads take a
    // moment; wait until the active index is empty and the advance stream is drained.
    const settleQuiet = async () => {
      const deadline = performance.now() + 60_000;
      for (;;) {
        const active = await redis.zcard(`${prefix}:{ctl}:active`);
        const backlog = await redis.xlen(`{${prefix}:q}:advance:events`).catch(() => 0);
        if (active === 0 && backlog === 0) break;
        if (performance.now() > deadline) throw new Error(`not quiet after 60 s: ${active} active runs, ${backlog} advance events`);
        await sleep(100);
      }
      await sleep(500);
    };

    const off = await phase('memoff', false);
    const on = await phase('memon', true);
    return { off, on };
  } finally {
    await redis.quit();
    await Promise.all(procs.map((p) => p.stop(10_000)));
  }
}

const redisSrv = await startRedis();
let result;
try {
  const { off, on } = await main(redisSrv.url);
  console.error(table(`in flight (outputs off), used_memory ${off.inFlight.usedMemoryBytesPerRun} B/run`, off.inFlight.byFamily, off.inFlight.memoryStatsPerRun));
  console.error(table(`ended (outputs off), used_memory ${off.ended.usedMemoryBytesPerRun} B/run`, off.ended.byFamily, off.ended.memoryStatsPerRun));
  console.error(table(`ended (outputs on${on.keepOutputs ? '' : ': not supported, default'}), used_memory ${on.ended.usedMemoryBytesPerRun} B/run`, on.ended.byFamily, on.ended.memoryStatsPerRun));
  const targets = {
    inFlightBytesPerRun: { goal: `<= ${TARGETS.inFlightBytesPerRun}`, value: off.inFlight.usedMemoryBytesPerRun, met: off.inFlight.usedMemoryBytesPerRun <= TARGETS.inFlightBytesPerRun },
    keptBytesPerEndedRunOutputsOff: { goal: `<= ${TARGETS.keptBytesPerEndedRunOutputsOff}`, value: off.ended.usedMemoryBytesPerRun, met: off.ended.usedMemoryBytesPerRun <= TARGETS.keptBytesPerEndedRunOutputsOff },
  };
  result = {
    headline: `Redis per four-node run: ${off.inFlight.usedMemoryBytesPerRun} B in flight (target ≤ ${TARGETS.inFlightBytesPerRun}), ${off.ended.usedMemoryBytesPerRun} B kept once ended with outputs off (target ≤ ${TARGETS.keptBytesPerEndedRunOutputsOff}), ${on.ended.usedMemoryBytesPerRun} B with outputs ${on.keepOutputs ? 'on' : 'on (not supported: default)'}; ${RUNS} runs`,
    config: { runs: RUNS, holdMs: HOLD_MS, workflow: 'fan-out/join a -> (b, c) -> d, d held', speculation: false },
    targets,
    outputsOff: off,
    outputsOn: on,
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  };
  console.log(JSON.stringify({ headline: result.headline, targets }, null, 2));
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'memory.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await redisSrv.stop();
}
if (!result.targets.inFlightBytesPerRun.met || !result.targets.keptBytesPerEndedRunOutputsOff.met) {
  console.error('memory targets missed (issue 13)');
  process.exit(1);
}
