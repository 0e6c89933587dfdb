// The cost of applying outcomes through the class script alone (issue 13 item 2), without the
// stream, validation or detectors: batches of --batch outcomes over --classes online classes,
// each batch applied by one estimatorApplyClasses call as the estimator does on a single server
// (--per-class: one estimatorApplyOutcomes call per class, as in a Cluster, all calls of a batch
// in one tick on an auto-pipelining client), --batches batches after --warmup batches.
// Prints, per outcome: this process's CPU (the wrapper: arguments, command, reply, snapshots),
// Redis' CPU (INFO cpu) and the script's own time (INFO commandstats, evalsha).
//
//   pnpm exec turbo run build && node bench/drift/apply-cost.mjs [--batches 200] [--batch 500] [--classes 20] [--per-class]
import { controlEnsureClass, defineEstimatorScripts, estimatorApplyClasses, estimatorApplyOutcomes, mulberry32 } from '@gambit/shared';
import { startRedis } from '@gambit/testkit';
import { Redis } from 'ioredis';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const BATCHES = arg('batches', 200);
const BATCH = arg('batch', 500);
const CLASSES = arg('classes', 20);
const WARMUP = arg('warmup', 50);
const PER_CLASS = process.argv.includes('--per-class');

const server = process.env.REDIS_URL === undefined ? await startRedis() : undefined;
const url = process.env.REDIS_URL ?? server.url;
const redis = new Redis(url, { enableAutoPipelining: true });
const admin = new Redis(url);
defineEstimatorScripts(redis);
const ks = { prefix: `bench:apply:${process.pid}` };
for (let c = 0; c < CLASSES; c++) {
  await controlEnsureClass(redis, ks, { classId: `t${c}`, prior: { a: 180, b: 20 }, depType: 'passthrough', initialStage: 'online', nowMs: Date.now(), tenant: 'bench' });
}
const rnd = mulberry32(42);
let seq = 0;
async function oneBatch() {
  const byClass = new Map();
  for (let j = 0; j < BATCH; j++) {
    const classId = `t${j % CLASSES}`;
    const hit = rnd() < 0.9;
    seq++;
    const o = { outcomeId: `o${seq}`, kind: hit ? 'hit' : 'miss', wasteNanoUsd: hit ? 0 : 1_000_000, savedMs: hit ? 1000 : 0, fencingViolation: false, windowCap: 600, tenant: 'bench', phDelta: 0.05 };
    const list = byClass.get(classId);
    if (list === undefined) byClass.set(classId, [o]);
    else list.push(o);
  }
  const now = Date.now();
  const common = { nowMs: now, fallbackPrior: { a: 1, b: 1 }, fallbackStage: 'shadow', forgetBeforeMs: now - 600_000 };
  const res = PER_CLASS
    ? await Promise.all([...byClass].map(([classId, outcomes]) => estimatorApplyOutcomes(redis, ks, { ...common, classId, outcomes })))
    : await estimatorApplyClasses(redis, ks, { ...common, classes: [...byClass].map(([classId, outcomes]) => ({ classId, outcomes })) });
  let applied = 0;
  for (const r of res) {
    if (r instanceof Error) throw r;
    for (const s of r) if (s !== undefined) applied++;
  }
  if (applied !== BATCH) throw new Error(`applied ${applied} of ${BATCH}`);
}
async function redisCpuMs() {
  const info = await admin.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN);
  return (get('used_cpu_user') + get('used_cpu_sys')) * 1000;
}
async function evalshaUsec() {
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(await admin.info('commandstats'));
  return m === null ? { calls: 0, usec: 0 } : { calls: Number(m[1]), usec: Number(m[2]) };
}
for (let i = 0; i < WARMUP; i++) await oneBatch();
const e0 = await evalshaUsec();
const r0 = await redisCpuMs();
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < BATCHES; i++) await oneBatch();
const ms = performance.now() - t0;
const c1 = process.cpuUsage(c0);
const r1 = await redisCpuMs();
const e1 = await evalshaUsec();
const n = BATCHES * BATCH;
const f = (x) => x.toFixed(2);
console.log(
  `${n} outcomes (${BATCH}/batch, ${CLASSES} classes, ${PER_CLASS ? 'one call per class' : 'one call per batch'}): client CPU ${f((c1.user + c1.system) / n)} µs/outcome, Redis CPU ${f(((r1 - r0) * 1000) / n)} µs/outcome, ` +
    `script ${f((e1.usec - e0.usec) / n)} µs/outcome (${e1.calls - e0.calls} calls, ${f((e1.usec - e0.usec) / (e1.calls - e0.calls))} µs/call); wall ${f((ms * 1000) / n)} µs/outcome`,
);
redis.disconnect();
admin.disconnect();
await server?.stop();
