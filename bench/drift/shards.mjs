// Outcome stream shards on the local three-master Redis Cluster (issue 13 item 4, the estimator's
// side; docs/estimator.md, Shards). For each shard count S (baseline S = 1, the single {ctl}
// stream, in the same run): 20 online classes, one estimator process with GAMBIT_OUTCOME_SHARDS = S,
// N outcomes XADDed to their classes' shards (one pipeline per shard and chunk), timed until every
// shard's entries are acked. Reported per S: outcomes/s, each master's Redis CPU per outcome
// (INFO cpu deltas) and the busiest master's share of the Redis CPU (1/3 = even over 3 masters).
//
//   pnpm exec turbo run build && node bench/drift/shards.mjs [--outcomes 20000] [--shards 1,6] [--rounds 2]
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane, mulberry32, silentLogger, systemClock } from '@gambit/shared';
import { outcomeShardOf, outcomeStreams } from '@gambit/shared/redis';
import { startProcess, startRedisCluster } from '@gambit/testkit';
import { Cluster, Redis } from 'ioredis';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const OUTCOMES = Number(arg('outcomes', '20000'));
const SHARDS = String(arg('shards', '1,6')).split(',').map(Number);
const ROUNDS = Number(arg('rounds', '2'));
const CLASSES = 20;
const ESTIMATOR = join(root, 'services', 'estimator', 'dist', 'main.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

const cluster = await startRedisCluster(3);
const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
const redis = new Cluster([...cluster.nodes]);
const nodeClients = cluster.nodes.map((n) => new Redis({ host: n.host, port: n.port }));
const procs = [];

async function masterCpuMs() {
  return Promise.all(
    nodeClients.map(async (c) => {
      const info = await c.info('cpu');
      const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN);
      return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
    }),
  );
}

async function acked(streams) {
  let read = 0;
  let pending = 0;
  for (const s of streams) {
    const groups = await redis.xinfo('GROUPS', s).catch(() => []);
    const g = groups.find((x) => x[x.indexOf('name') + 1] === 'estimators');
    if (g === undefined) continue;
    read += Number(g[g.indexOf('entries-read') + 1] ?? 0);
    pending += Number(g[g.indexOf('pending') + 1]);
  }
  return read >= OUTCOMES && pending === 0;
}

async function runOnce(shards, r) {
  const prefix = `bench:shards:${process.pid}:${shards}:${r}`;
  const ks = { prefix };
  const cp = new ControlPlane(redis, ks, systemClock, silentLogger, { outcomeShards: shards });
  for (let c = 0; c < CLASSES; c++) await cp.ensureClass(`t${c}`, { depType: 'passthrough', prior: { a: 180, b: 20 }, initialStage: 'online', tenant: 'bench' });
  await cp.close();
  const est = startProcess('estimator', ESTIMATOR, [], {
    REDIS_CLUSTER_NODES: seeds, GAMBIT_PREFIX: prefix, ESTIMATOR_ID: 'bench', GAMBIT_OUTCOME_SHARDS: String(shards), LOG_LEVEL: 'info',
  });
  procs.push(est);
  await est.waitForLine((l) => l.includes('estimator ready'), 30_000);
  const streams = outcomeStreams(ks, shards);
  const rnd = mulberry32(42);
  const cpu0 = await masterCpuMs();
  const t0 = performance.now();
  let seq = 0;
  for (let sent = 0; sent < OUTCOMES; sent += 1000) {
    // One pipeline per shard (a Cluster pipeline holds keys of one slot).
    const pipes = new Map();
    for (let j = 0; j < Math.min(1000, OUTCOMES - sent); j++) {
      seq++;
      const edgeClass = `t${seq % CLASSES}`;
      const stream = streams[outcomeShardOf(edgeClass, shards)];
      if (!pipes.has(stream)) pipes.set(stream, redis.pipeline());
      pipes.get(stream).xadd(stream, '*', 'outcome', JSON.stringify({
        outcomeId: `o${seq}`, decisionId: `d${seq}`, tenant: 'bench', workflow: 'w', runId: `r${seq}`, edgeClass,
        kind: rnd() < 0.9 ? 'hit' : 'miss', wasteUsd: 0, secondsSaved: 1, fencingViolation: false, atMs: Date.now(),
      }));
    }
    await Promise.all([...pipes.values()].map((p) => p.exec()));
  }
  const deadline = Date.now() + 600_000;
  while (!(await acked(streams))) {
    if (Date.now() > deadline) throw new Error(`shards ${shards}: not all acked`);
    await sleep(5);
  }
  const ms = performance.now() - t0;
  const cpu1 = await masterCpuMs();
  await est.stop();
  const perMaster = cpu1.map((c, i) => ((c - cpu0[i]) * 1000) / OUTCOMES);
  const total = perMaster.reduce((s, x) => s + x, 0);
  return { outcomesPerSec: Math.round(OUTCOMES / (ms / 1000)), redisCpuUsPerOutcomeByMaster: perMaster.map((x) => round(x, 1)), busiestMasterShare: round(Math.max(...perMaster) / total, 3) };
}

try {
  const results = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of SHARDS) {
      const x = await runOnce(s, r);
      results.push({ shards: s, round: r + 1, ...x });
      console.log(`shards ${s} round ${r + 1}: ${x.outcomesPerSec} outcomes/s; Redis CPU µs/outcome by master ${x.redisCpuUsPerOutcomeByMaster.join(' / ')}; busiest master ${(100 * x.busiestMasterShare).toFixed(1)}% of it`);
    }
  }
  const out = {
    benchmark: 'drift-shards',
    at: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg() },
    outcomes: OUTCOMES,
    classes: CLASSES,
    masters: cluster.nodes.length,
    results,
  };
  mkdirSync(join(here, '..', 'results'), { recursive: true });
  writeFileSync(join(here, '..', 'results', 'drift-shards.json'), `${JSON.stringify(out, null, 2)}\n`);
} finally {
  await Promise.all(procs.map((p) => p.stop()));
  redis.disconnect();
  for (const c of nodeClients) c.disconnect();
  await cluster.stop();
}
