// bench/faults/startup.mjs (issue 11 item 4, where the throughput under faults goes): how long a
// killed process's replacement takes to be ready, and how much CPU its start-up burns, per
// service, against a live Redis. Under a fault every 2 s most of the lost throughput is kills
// (bench/faults/run.mjs --kinds): a killed worker or scheduler leaves its role at half capacity,
// or none when the other one is down too, until its replacement is ready, and each start-up
// takes CPU from the processes still serving. Wall time depends on the machine's load; CPU time
// (utime + stime of the process until its ready line) much less.
//
// Each service is started --n times, one after another (node dist/main.js, as the campaign
// restarts it). With --baseline DIR (another checkout of the repo, built), the same is measured
// for DIR's services, interleaved, and the ratio this/baseline is printed.
//
// Usage: node bench/faults/startup.mjs [--n 5] [--baseline /path/to/other/checkout]
// Writes bench/results/startup.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCommand, startRedis } from '@gambit/testkit';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : process.argv[i + 1];
};
const n = Number(arg('n', '5'));
if (!Number.isInteger(n) || n < 1) throw new Error('--n must be a positive integer');
const baseline = arg('baseline', undefined);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const log = (l) => process.stderr.write(`${l}\n`);
const READY = { worker: '"worker ready"', scheduler: '"scheduler listening"', estimator: 'estimator ready' };
const CLK_TCK = 100;
const sides = { this: ROOT, ...(baseline === undefined ? {} : { baseline }) };

/** utime + stime of a live process, ms. */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

const redis = await startRedis();
const raw = {};
const loads = [];
try {
  let port = 18_500;
  for (let i = 0; i < n; i++)
    for (const role of Object.keys(READY))
      for (const [side, dir] of Object.entries(sides)) {
        loads.push(loadavg()[0]);
        const env = { PATH: process.env.PATH, REDIS_URL: redis.url, GAMBIT_PREFIX: `startup${i}`, LOG_LEVEL: 'info', OPS_PORT: String(port++) };
        if (role === 'scheduler') Object.assign(env, { GAMBIT_ADMIN_KEY: 'a'.repeat(43), GAMBIT_KEY_HMAC_SECRET: 'b'.repeat(43), PORT: String(port++), HOST: '127.0.0.1', SCHEDULER_ID: `s${i}`, REQUIRE_ESTIMATOR_HEARTBEAT: 'false' });
        if (role === 'worker') Object.assign(env, { WORKER_ID: `w${i}` });
        if (role === 'estimator') Object.assign(env, { ESTIMATOR_ID: `e${i}` });
        const t0 = performance.now();
        const p = startCommand(`${role}-${side}-${i}`, process.execPath, [join(dir, 'services', role, 'dist', 'main.js')], env);
        try {
          await p.waitForLine((l) => l.includes(READY[role]), 120_000);
          const sample = { wallMs: Math.round(performance.now() - t0), cpuMs: cpuMs(p.proc.pid) };
          const key = `${role} ${side}`;
          raw[key] = [...(raw[key] ?? []), sample];
        } finally {
          await p.stop(5000);
        }
      }
} finally {
  await redis.stop();
}
const out = { benchmark: 'startup', n, baseline: baseline ?? null, loadAvgDuring: { min: Math.min(...loads), max: Math.max(...loads) }, services: {} };
for (const role of Object.keys(READY)) {
  const one = (side) => {
    const xs = raw[`${role} ${side}`];
    return xs === undefined ? undefined : { wallMsMedian: median(xs.map((x) => x.wallMs)), cpuMsMedian: median(xs.map((x) => x.cpuMs)), samples: xs };
  };
  const t = one('this');
  const b = one('baseline');
  out.services[role] = { this: t, ...(b === undefined ? {} : { baseline: b, cpuRatio: t.cpuMsMedian / b.cpuMsMedian, wallRatio: t.wallMsMedian / b.wallMsMedian }) };
  log(`[startup] ${role}: ready in ${t.wallMsMedian} ms, ${t.cpuMsMedian} ms CPU (median of ${n})${b === undefined ? '' : `; baseline ${b.wallMsMedian} ms, ${b.cpuMsMedian} ms CPU: CPU ratio ${(t.cpuMsMedian / b.cpuMsMedian).toFixed(2)}`}`);
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'startup.json'), `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(out.services, (k, v) => (k === 'samples' ? undefined : v), 2)}\n`);
