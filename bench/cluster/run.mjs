// Queue shards on the local three-master Redis Cluster (issue 13 item 4; docs/runtime.md, Queue
// shards). The same load runs with QUEUE_SHARDS = 1 and 3 (each `--rounds` times, alternated, one
// cluster for all): one scheduler and `--workers` workers (real processes, simulated provider at
// GAMBIT_SIM_TIME_SCALE=0), `--runs` runs of a realistic mix (a 3-node chain and a speculated
// router, alternately) over `--tenants` tenants, `--inflight` runs in flight at most.
//
// Measured per master: every command the services send (MONITOR of each master; commands a
// script runs inside Redis are not counted, the script's EVALSHA is), split into queue commands
// (any argument under a queue tag `{P:q…`: BullMQ, fair dispatch, the advance stream) and the
// rest (run, tenant, class keys); and `INFO commandstats` deltas (all calls, scripts' inner ones
// included). Throughput: runs finished per second (MONITOR on in every configuration alike).
//
// The result: the busiest master's share of the queue commands. Pass criterion (set before the
// first measurement): ≥ 0.95 with one shard (all queue traffic on one master) and ≤ 0.5 with
// three (1/3 is an even spread; the `{P:q}` tag keeps the advance stream).
//
// Tenants are picked so that each of the three shards serves the same number of them (the spread
// of real traffic follows the traffic of the tenants each shard serves).
//
//   pnpm run build && node bench/cluster/run.mjs [--shards 1,3] [--runs 240] [--tenants 12] [--inflight 48] [--workers 2] [--concurrency 8] [--rounds 1]
//
// Writes bench/results/cluster.json.
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keySlot, queueShardOf, queueShardPrefixes, runKeys } from '@gambit/shared/redis';
import { startProcess, startRedisCluster } from '@gambit/testkit';
import { Cluster, Redis } from 'ioredis';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const SHARDS = String(arg('shards', '1,3')).split(',').map(Number);
const RUNS = Number(arg('runs', '240'));
const TENANTS = Number(arg('tenants', '12'));
const INFLIGHT = Number(arg('inflight', '48'));
const WORKERS = Number(arg('workers', '2'));
const CONCURRENCY = Number(arg('concurrency', '8'));
const ROUNDS = Number(arg('rounds', '1'));
const PASS = { oneShardMin: 0.95, threeShardsMax: 0.5 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** sha1 -> script name, for the EVALSHAs counted (Gambit's scripts and BullMQ's). */
const scriptNames = (() => {
  const names = new Map();
  const sha = (src) => createHash('sha1').update(src).digest('hex');
  const dir = join(ROOT, 'packages/shared/src/redis/lua');
  for (const f of readdirSync(dir)) names.set(sha(readFileSync(join(dir, f), 'utf8')), `gambit:${f.replace(/\.lua$/, '')}`);
  const bull = createRequire(import.meta.url)('bullmq/dist/cjs/scripts/index.js');
  for (const v of Object.values(bull)) if (typeof v?.content === 'string') names.set(sha(v.content), `bullmq:${v.name}-${v.keys}`);
  return names;
})();
const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

const sim = (id, prompt, output) => ({
  id,
  kind: 'llm',
  provider: 'simulated',
  model: 'gpt-4o-mini',
  prompt,
  expectedOutputTokens: 1,
  maxTokens: 4,
  simulate: { output, ttftMs: 0 },
});
const CHAIN = {
  name: 'benchchain',
  nodes: [sim('n0', 'start {{inputs.q}}', 'out0'), sim('n1', 'next {{nodes.n0.output}}', 'out1'), sim('n2', 'next {{nodes.n1.output}}', 'out2')],
  edges: [
    { from: 'n0', to: 'n1', type: 'passthrough' },
    { from: 'n1', to: 'n2', type: 'passthrough' },
  ],
};
const ROUTER = {
  name: 'benchrouter',
  nodes: [
    {
      ...sim('classify', 'classify {{inputs.q}}', 'billing'),
      simulate: { outcomes: [{ value: 'billing', weight: 0.8 }, { value: 'technical', weight: 0.1 }, { value: 'account', weight: 0.1 }] },
    },
    sim('draft', 'reply as {{nodes.classify.output}} to {{inputs.q}}', 'draft'),
    sim('send', 'send {{nodes.draft.output}}', 'sent'),
  ],
  edges: [
    { from: 'classify', to: 'draft', type: 'router_k_way', k: 3, predictor: { kind: 'most_frequent', fallback: 'billing' }, match: { tier: 1, caseInsensitive: true, threshold: 0.95, allowFuzzyForLlm: false }, speculate: true },
    { from: 'draft', to: 'send', type: 'passthrough' },
  ],
};
const WORKFLOWS = [CHAIN, ROUTER];

/** Tenant names spread evenly over the shards of the largest count measured. */
function pickTenants() {
  const n = Math.max(...SHARDS);
  const per = new Map();
  const out = [];
  for (let i = 0; out.length < TENANTS; i++) {
    const t = `bench-${i}`;
    const s = queueShardOf(t, n);
    if ((per.get(s) ?? 0) >= Math.ceil(TENANTS / n)) continue;
    per.set(s, (per.get(s) ?? 0) + 1);
    out.push(t);
  }
  return out;
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

async function commandCalls(client) {
  let total = 0;
  for (const line of (await client.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) total += Number(m[2]);
  }
  return total;
}

async function slotOwners(client) {
  const slots = await client.call('CLUSTER', 'SLOTS');
  return (slot) => slots.find(([lo, hi]) => slot >= lo && slot <= hi)?.[2]?.[1];
}

const cluster = await startRedisCluster(3);
const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
const redis = new Cluster([...cluster.nodes]);
const nodeClients = cluster.nodes.map((n) => new Redis({ host: n.host, port: n.port }));
const ownerOf = await slotOwners(nodeClients[0]);
const tenants = pickTenants();
const procs = [];
const redisPids = await Promise.all(nodeClients.map(async (c) => Number(/process_id:(\d+)/.exec(await c.info('server'))?.[1])));

async function runOnce(shards, r) {
  const prefix = `bench_cluster_${process.pid}_${shards}_${r}`;
  const ks = { prefix };
  const adminKey = `adm_${randomBytes(32).toString('base64url')}`;
  const auth = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
  const env = { REDIS_CLUSTER_NODES: seeds, GAMBIT_PREFIX: prefix, QUEUE_SHARDS: String(shards), LOG_LEVEL: 'info' };
  const scheduler = startProcess('scheduler', join(ROOT, 'services/scheduler/dist/main.js'), [], {
    ...env,
    GAMBIT_ADMIN_KEY: adminKey,
    GAMBIT_KEY_HMAC_SECRET: randomBytes(32).toString('hex'),
    PORT: '0',
    REQUIRE_ESTIMATOR_HEARTBEAT: 'false',
    ADVANCE_CONCURRENCY: String(CONCURRENCY * WORKERS),
    DEFAULT_INITIAL_STAGE: 'online',
  });
  procs.push(scheduler);
  const line = await scheduler.waitForLine((l) => l.includes('"scheduler listening"'), 60_000);
  const url = `http://127.0.0.1:${JSON.parse(line).port}`;
  const workers = [];
  for (let i = 0; i < WORKERS; i++) {
    const w = startProcess(`worker-${i}`, join(ROOT, 'services/worker/dist/main.js'), [], {
      ...env,
      GAMBIT_SIM_TIME_SCALE: '0',
      WORKER_CONCURRENCY: String(CONCURRENCY),
      WORKER_SPEC_CONCURRENCY: String(Math.max(1, CONCURRENCY / 2)),
    });
    procs.push(w);
    workers.push(w);
  }
  for (const w of workers) await w.waitForLine((l) => l.includes('"worker ready"'), 60_000);
  for (const tenant of tenants) {
    for (const wf of WORKFLOWS) {
      const reg = await fetch(`${url}/v1/workflows`, { method: 'POST', headers: auth, body: JSON.stringify({ tenant, workflow: wf }) });
      if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${await reg.text()}`);
    }
  }

  // Every command each master receives from a client (MONITOR), by kind.
  const queueTag = `{${prefix}:q`;
  const counts = cluster.nodes.map(() => ({ queue: 0, other: 0 }));
  const queueByCommand = new Map();
  const monitors = [];
  let monitorErrors = 0;
  for (const [i, n] of cluster.nodes.entries()) {
    const m = new Redis({ host: n.host, port: n.port, monitor: true, lazyConnect: true });
    // ioredis takes MONITOR lines that arrive with MONITOR's OK for replies: counted, not fatal.
    m.on('error', () => {
      monitorErrors++;
    });
    const ready = new Promise((resolve) => m.once('monitoring', resolve));
    await m.connect();
    await ready;
    m.on('monitor', (_t, args, source) => {
      if (source === 'lua') return;
      if (args.some((a) => String(a).startsWith(queueTag))) {
        counts[i].queue++;
        const cmd = String(args[0]).toLowerCase();
        const name = cmd === 'evalsha' ? `evalsha ${scriptNames.get(String(args[1])) ?? String(args[1]).slice(0, 8)}` : cmd;
        queueByCommand.set(name, (queueByCommand.get(name) ?? 0) + 1);
      } else counts[i].other++;
    });
    monitors.push(m);
  }
  await sleep(200);
  for (const c of counts) Object.assign(c, { queue: 0, other: 0 });
  queueByCommand.clear();
  const callsBefore = await Promise.all(nodeClients.map(commandCalls));
  const cpuOf = () => ({
    scheduler: cpuMs(scheduler.proc.pid) ?? 0,
    workers: workers.reduce((a, w) => a + (cpuMs(w.proc.pid) ?? 0), 0),
    redis: redisPids.map((pid) => cpuMs(pid) ?? 0),
  });
  const cpu0 = cpuOf();
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let retried = 0;
  const one = async () => {
    for (;;) {
      const i = next++;
      if (i >= RUNS) return;
      const tenant = tenants[i % tenants.length];
      const wf = WORKFLOWS[Math.floor(i / tenants.length) % WORKFLOWS.length];
      let res;
      for (let tries = 1; ; tries++) {
        res = await fetch(`${url}/v1/runs`, { method: 'POST', headers: auth, body: JSON.stringify({ tenant, workflow: wf.name, inputs: { q: `q${i}` } }) });
        // 503: the API's deadline passed before the run was written (nothing stored; a loaded
        // machine): submitted again, counted.
        if (res.status !== 503 || tries >= 5) break;
        retried++;
        await res.text();
        await sleep(200 * tries);
      }
      if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${await res.text()}`);
      const { runId } = await res.json();
      for (;;) {
        const status = await redis.hget(runKeys(ks, tenant, runId).run, 'status');
        if (status !== 'running' && status !== null) {
          if (status !== 'succeeded') failed++;
          break;
        }
        await sleep(20);
      }
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, one));
  const ms = performance.now() - t0;
  const cpu1 = cpuOf();
  const callsAfter = await Promise.all(nodeClients.map(commandCalls));
  for (const m of monitors) m.disconnect();
  await Promise.all([scheduler, ...workers].map((p) => p.stop(10_000)));
  procs.length = 0;

  const queueTotal = counts.reduce((a, c) => a + c.queue, 0);
  const allTotal = counts.reduce((a, c) => a + c.queue + c.other, 0);
  const tags = queueShardPrefixes(ks, shards);
  const result = {
    shards,
    round: r,
    runs: RUNS,
    failedRuns: failed,
    submitsRetried: retried,
    seconds: round(ms / 1000, 2),
    runsPerSec: round((RUNS * 1000) / ms, 1),
    cpuMsPerRun: {
      scheduler: round((cpu1.scheduler - cpu0.scheduler) / RUNS, 2),
      workers: round((cpu1.workers - cpu0.workers) / RUNS, 2),
      redisPerMaster: cpu1.redis.map((c, i) => round((c - cpu0.redis[i]) / RUNS, 2)),
    },
    shardMasters: tags.map((t) => ({ tag: t, slot: keySlot(t), masterPort: ownerOf(keySlot(t)) })),
    perMaster: cluster.nodes.map((n, i) => ({
      port: n.port,
      commandstatsCalls: callsAfter[i] - callsBefore[i],
      clientCommands: counts[i].queue + counts[i].other,
      queueCommands: counts[i].queue,
      otherCommands: counts[i].other,
    })),
    queueCommandsPerRun: round(queueTotal / RUNS, 1),
    queueCommandsPerRunByCommand: Object.fromEntries([...queueByCommand.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v / RUNS, 2)])),
    busiestQueueShare: round(Math.max(...counts.map((c) => c.queue)) / queueTotal),
    busiestClientShare: round(Math.max(...counts.map((c) => c.queue + c.other)) / allTotal),
    busiestCommandstatsShare: round(Math.max(...callsAfter.map((a, i) => a - callsBefore[i])) / callsAfter.reduce((s, a, i) => s + a - callsBefore[i], 0)),
    monitorErrors,
  };
  console.log(
    `shards=${shards} round=${r}: ${result.runsPerSec} runs/s (${result.seconds} s, ${failed} failed); queue commands per master ${counts.map((c) => c.queue).join(' / ')} -> busiest share ${result.busiestQueueShare}; all client commands busiest share ${result.busiestClientShare}; commandstats calls per master ${result.perMaster.map((p) => p.commandstatsCalls).join(' / ')}; CPU ms per run: scheduler ${result.cpuMsPerRun.scheduler}, workers ${result.cpuMsPerRun.workers}, redis ${result.cpuMsPerRun.redisPerMaster.join(' / ')}`,
  );
  return result;
}

const results = [];
try {
  for (let r = 0; r < ROUNDS; r++) for (const s of SHARDS) results.push(await runOnce(s, r));
} finally {
  await Promise.allSettled(procs.map((p) => p.stop(5_000)));
  redis.disconnect();
  for (const c of nodeClients) c.disconnect();
  await cluster.stop();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const bySharding = Object.fromEntries(
  SHARDS.map((s) => {
    const rs = results.filter((x) => x.shards === s);
    return [s, { busiestQueueShare: median(rs.map((x) => x.busiestQueueShare)), runsPerSec: median(rs.map((x) => x.runsPerSec)), queueCommandsPerRun: median(rs.map((x) => x.queueCommandsPerRun)) }];
  }),
);
const one = bySharding[1];
const three = bySharding[3];
const pass = one !== undefined && three !== undefined ? one.busiestQueueShare >= PASS.oneShardMin && three.busiestQueueShare <= PASS.threeShardsMax : null;
const summary = {
  bySharding,
  throughputRatio3to1: one !== undefined && three !== undefined ? round(three.runsPerSec / one.runsPerSec, 2) : null,
  passCriterion: `busiest master's share of queue commands >= ${PASS.oneShardMin} with 1 shard and <= ${PASS.threeShardsMax} with 3`,
  pass,
};
console.log(JSON.stringify(summary, null, 2));
const headline =
  one !== undefined && three !== undefined
    ? `busiest master's share of queue commands: ${one.busiestQueueShare} with 1 shard, ${three.busiestQueueShare} with 3 (pass: >= ${PASS.oneShardMin} and <= ${PASS.threeShardsMax}: ${pass ? 'PASS' : 'FAIL'}); queue commands per run ${one.queueCommandsPerRun} -> ${three.queueCommandsPerRun}; runs/s ${one.runsPerSec} -> ${three.runsPerSec} (median of ${ROUNDS})`
    : `shards ${SHARDS.join(',')}: see results`;
const out = {
  bench: 'cluster',
  headline,
  args: { shards: SHARDS, runs: RUNS, tenants: TENANTS, inflight: INFLIGHT, workers: WORKERS, concurrency: CONCURRENCY, rounds: ROUNDS },
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg() },
  tenants: tenants.map((t) => ({ tenant: t, shardOf3: queueShardOf(t, 3) })),
  results,
  summary,
};
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'cluster.json'), `${JSON.stringify(out, null, 2)}\n`);
process.exit(pass === false ? 1 : 0);
