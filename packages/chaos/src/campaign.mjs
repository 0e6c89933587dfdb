// The seeded chaos campaign (issue 11). Real processes, each in its own network namespace
// (@gambit/testkit createNetwork: names `w2ch-*`, addresses in 10.232.0.0/16): Redis 7 with AOF (appendfsync everysec), two schedulers, two workers and an
// estimator. The seed fixes the workload (run ids, inputs, the simulated routes) and the fault
// schedule (workload.mjs). Faults, one at a time:
//   kill:<worker|scheduler|estimator>   SIGKILL, then a new process on the same host
//   stop:<...>                          SIGSTOP for longer than the worker lock, then SIGCONT
//   redis:kill                          kill -9 of Redis, restart on its AOF
//   redis:client-kill                   CLIENT KILL of every normal and pub/sub connection
//   partition:<worker|scheduler>        the host's link cut for longer than the lock, then healed
// Runs are submitted throughout (same run id on retry, so a submit is accepted exactly once);
// the campaign plays the operator for nodes in needs_attention (D2), deciding from the effect
// log. When every accepted run has ended, the history checker (checker.mjs) reads Redis, the
// effect logs and the API. Everything started is stopped and every namespace deleted at the end,
// on error, and on SIGINT/SIGTERM.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetwork, redisServerBinary, startCommand } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { checkHistory, collectHistory, readEffectLogs } from './checker.mjs';
import { BREAKS, chaosBreak } from './effect-tools.mjs';
import { chaosWorkflow, FAULT_KINDS, faultSchedule, prng, runSpec } from './workload.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = {
  scheduler: join(ROOT, 'services', 'scheduler', 'dist', 'main.js'),
  worker: join(ROOT, 'services', 'worker', 'dist', 'main.js'),
  estimator: join(ROOT, 'services', 'estimator', 'dist', 'main.js'),
};
const TOOLS = join(ROOT, 'packages', 'chaos', 'src', 'effect-tools.mjs');
const READY = { scheduler: '"scheduler listening"', worker: '"worker ready"', estimator: 'estimator ready' };
const HOSTS = [
  { host: 'sched1', role: 'scheduler' },
  { host: 'sched2', role: 'scheduler' },
  { host: 'worker1', role: 'worker' },
  { host: 'worker2', role: 'worker' },
  { host: 'estim', role: 'estimator' },
];
const API_PORT = 8080;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function replayCommand(o) {
  return `pnpm chaos --runs ${o.runs} --faults ${o.faults} --seed ${o.seed}${o.timeScale === 0.2 ? '' : ` --time-scale ${o.timeScale}`}${o.breakName ? ` --break ${o.breakName}` : ''}`;
}

/**
 * @param {{ runs: number, faults: number, seed: number, timeScale?: number, lockMs?: number,
 *   concurrency?: number, log?: (line: string) => void, progressMs?: number, drainTimeoutMs?: number }} input
 */
export async function runCampaign(input) {
  const o = { timeScale: 0.2, lockMs: 1500, concurrency: 16, maxOpenRuns: 64, progressMs: 5000, drainTimeoutMs: 180_000, log: (l) => process.stderr.write(`${l}\n`), ...input };
  // Deliberately broken tools (effect-tools.mjs BREAKS), for showing that the checker catches it.
  o.breakName = chaosBreak({ GAMBIT_CHAOS_BREAK: o.breakName ?? '' }, 'breakName');
  const log = o.log;
  if (o.breakName !== '') log(`[chaos] DELIBERATELY BROKEN: ${o.breakName}: ${BREAKS[o.breakName].what}`);
  const t0 = Date.now();
  const rnd = prng(o.seed);
  const prefix = `chaos${o.seed}`;
  const tenant = `chaos-${o.seed}`;
  // The operator's key and the HMAC secret of tenant keys (issue 10 auth), new per campaign.
  const adminKey = randomBytes(32).toString('base64url');
  const hmacSecret = randomBytes(32).toString('base64url');
  let tenantKey;
  const dataDir = mkdtempSync(join(tmpdir(), 'gambit-chaos-aof-'));
  const effectDir = mkdtempSync(join(tmpdir(), 'gambit-chaos-effects-'));
  const procs = new Map(); // host -> { role, proc, state, gen }
  let net;
  let redisProc;
  let redis;
  let stopping = false;
  const faultLog = [];
  const restarts = [];
  const unexpectedExits = [];
  const accepted = new Map(); // runId -> accepted at ms
  const ended = new Map(); // runId -> status
  const endedAt = new Map(); // runId -> ms since the start (to the watcher's 300 ms resolution)
  let firstSubmitMs = 0;
  const attention = { resolvedOk: 0, resolvedFailed: 0 };
  let notAccepted = 0;
  let throttled = 0;

  const cleanup = async () => {
    stopping = true;
    for (const p of procs.values()) {
      try {
        if (p.state === 'stopped') p.proc.proc.kill('SIGCONT');
      } catch {
        // gone
      }
    }
    await Promise.all([...procs.values()].map((p) => p.proc.stop(3000).catch(() => undefined)));
    await redisProc?.stop(3000).catch(() => undefined);
    redis?.disconnect();
    await net?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(effectDir, { recursive: true, force: true });
  };
  const onSignal = () => {
    log('[chaos] interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const trimLines = setInterval(() => {
    for (const p of [...procs.values(), { proc: redisProc }]) if (p.proc !== undefined && p.proc.lines.length > 400) p.proc.lines.splice(0, p.proc.lines.length - 200);
  }, 1000);

  try {
    net = await createNetwork(['redis', ...HOSTS.map((h) => h.host)], { prefix: 'w2ch', subnet: '10.232', user: 'chaos' });
    const addr = (h) => net.hosts.get(h).address;
    const redisArgs = [redisServerBinary(), '--bind', addr('redis'), '--port', '6379', '--protected-mode', 'no', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--dir', dataDir];
    const startRedis = async () => {
      redisProc = startCommand('redis', net.exec('redis')[0], [...net.exec('redis').slice(1), ...redisArgs], { PATH: process.env.PATH });
      await redisProc.waitForLine((l) => l.includes('Ready to accept connections'), 30_000);
    };
    await startRedis();
    const redisUrl = `redis://${addr('redis')}:6379`;
    redis = new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    // Redis is killed on purpose: the client reconnects; its errors meanwhile are expected.
    redis.on('error', () => undefined);

    const envOf = (role, host, gen) => {
      const common = { PATH: process.env.PATH, REDIS_URL: redisUrl, GAMBIT_PREFIX: prefix, LOG_LEVEL: 'info' };
      if (role === 'scheduler')
        return { ...common, GAMBIT_ADMIN_KEY: adminKey, GAMBIT_KEY_HMAC_SECRET: hmacSecret, PORT: String(API_PORT), HOST: addr(host), SCHEDULER_ID: `${host}-${gen}`, RECOVERY_SWEEP_MS: '500', RECOVERY_STALE_MS: '2000', REQUIRE_ESTIMATOR_HEARTBEAT: 'false' };
      if (role === 'worker')
        return {
          ...common,
          WORKER_ID: `${host}-${gen}`,
          WORKER_CONCURRENCY: '8',
          WORKER_SPEC_CONCURRENCY: '4',
          WORKER_LOCK_DURATION_MS: String(o.lockMs),
          WORKER_STALLED_INTERVAL_MS: String(Math.round(o.lockMs / 2)),
          WORKER_STATUS_CHECK_MS: '200',
          GAMBIT_SIM_TIME_SCALE: String(o.timeScale),
          GAMBIT_TOOLS_MODULE: TOOLS,
          CHAOS_EFFECT_DIR: effectDir,
          ...(o.breakName === '' ? {} : { GAMBIT_CHAOS_BREAK: o.breakName }),
        };
      // The checker's posterior_once reads every outcome id of the campaign from the classes'
      // `seen` sets: they keep a day of ids here (the default window is 10 min, issue 13 item 5).
      return { ...common, ESTIMATOR_ID: `${host}-${gen}`, ESTIMATOR_HEARTBEAT_MS: '200', ESTIMATOR_CLAIM_INTERVAL_MS: '500', ESTIMATOR_DEDUPE_WINDOW_MS: String(24 * 3600 * 1000) };
    };
    // Starts the host's process and waits until it is ready. Like an orchestrator, the campaign
    // restarts a process that exits on its own (not killed by a fault): each such exit is counted
    // and reported (e.g. a service that gives up at start-up while Redis is unreachable).
    const start = async (host, role, attempt = 1) => {
      const prev = procs.get(host);
      const gen = (prev?.gen ?? 0) + 1;
      const [cmd, ...pre] = net.exec(host);
      const proc = startCommand(`${host}-${gen}`, cmd, [...pre, process.execPath, MAIN[role]], envOf(role, host, gen));
      const entry = { role, proc, state: 'starting', gen };
      procs.set(host, entry);
      const ready = proc.waitForLine((l) => l.includes(READY[role]), 180_000);
      ready.catch(() => undefined);
      const early = proc.exited().then((code) => ({ exited: code }));
      const first = await Promise.race([ready.then(() => ({ exited: undefined })), early]);
      if (first.exited !== undefined) {
        if (stopping) throw new Error('chaos: stopping');
        const why = proc.lines.filter((l) => !l.startsWith('{')).slice(-3).join(' | ').slice(0, 300);
        unexpectedExits.push({ host, gen, atMs: Date.now() - t0, phase: 'start', code: first.exited, why });
        log(`[chaos] ${host}-${gen} exited during start-up (code ${first.exited}): ${why}`);
        if (stopping || attempt >= 20) throw new Error(`chaos: ${host} could not be started (${attempt} tries)`);
        await sleep(1000);
        return start(host, role, attempt + 1);
      }
      entry.state = 'up';
      void proc.exited().then((code) => {
        if (stopping || procs.get(host) !== entry || entry.state === 'down') return;
        entry.state = 'down';
        unexpectedExits.push({ host, gen, atMs: Date.now() - t0, phase: 'running', code, why: proc.lines.slice(-2).join(' | ').slice(0, 300) });
        log(`[chaos] ${host}-${gen} exited on its own (code ${code}): restarting it`);
        restarts.push(
          sleep(500)
            .then(() => (stopping ? undefined : start(host, role)))
            .catch((err) => {
              if (!stopping) log(`[chaos] restart of ${host} failed: ${String(err).slice(0, 300)}`);
            }),
        );
      });
      return entry;
    };
    await Promise.all(HOSTS.map((h) => start(h.host, h.role)));
    log(`[chaos] seed ${o.seed}: redis + ${HOSTS.length} processes up in ${Date.now() - t0} ms (network ${net.id}, prefix ${prefix})`);

    // The API, through whichever scheduler is up.
    const schedulers = HOSTS.filter((h) => h.role === 'scheduler').map((h) => h.host);
    let rr = 0;
    /** A request with the tenant's key (the operator's for operator routes), retried until answered below 500. */
    const api = async (method, path, body, timeoutMs = 3000, key = tenantKey ?? adminKey) => {
      for (let tries = 0; ; tries++) {
        const up = schedulers.filter((h) => procs.get(h)?.state === 'up');
        const host = up[rr++ % Math.max(1, up.length)];
        if (host !== undefined) {
          try {
            const res = await fetch(`http://${addr(host)}:${API_PORT}${path}`, {
              method,
              headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
              body: body === undefined ? undefined : JSON.stringify(body),
              signal: AbortSignal.timeout(timeoutMs),
            });
            const text = await res.text();
            // Admission (429) says when to come back: a client does, with the same request.
            if (res.status === 429) {
              throttled++;
              await sleep(Math.min(5000, 1000 * Number(res.headers.get('retry-after') ?? '0.2')));
              continue;
            }
            if (res.status < 500) return { status: res.status, body: text === '' ? {} : JSON.parse(text) };
          } catch {
            // unreachable, stopped or timed out: try again (the same request is idempotent)
          }
        }
        if (stopping) throw new Error('chaos: stopping');
        if (tries > 600) throw new Error(`chaos: ${method} ${path} failed for too long`);
        await sleep(100);
      }
    };
    const created = await api('POST', `/v1/admin/tenants/${tenant}/keys`, { label: 'chaos campaign' }, 3000, adminKey);
    if (created.status !== 201) throw new Error(`chaos: creating the tenant key failed: ${JSON.stringify(created.body)}`);
    tenantKey = created.body.key;
    // keepOutputs: the history checker reads outputs and released effects of ended runs (issue 13 item 3).
    const cfg = await api('PUT', `/v1/tenants/${tenant}/config`, { alpha: 1, lambdaUsdPerSec: 10, initialStage: 'online', keepOutputs: true });
    if (cfg.status !== 200) throw new Error(`chaos: tenant config failed: ${JSON.stringify(cfg.body)}`);
    const reg = await api('POST', '/v1/workflows', { tenant, workflow: chaosWorkflow() });
    if (reg.status !== 201) throw new Error(`chaos: workflow registration failed: ${JSON.stringify(reg.body)}`);

    // Faults, one at a time, on the seeded schedule.
    const schedule = faultSchedule(o.seed, o.faults, { gapMinMs: 200, gapMaxMs: 900, downMinMs: o.lockMs + 200, downMaxMs: o.lockMs + 800 });
    const pickHost = async (role, pick) => {
      // Waits (bounded) for a process of the role to be up: one may be restarting after a kill.
      for (let k = 0; k < 600; k++) {
        const hs = HOSTS.filter((h) => h.role === role && procs.get(h.host)?.state === 'up').map((h) => h.host);
        if (hs.length > 0) return hs[Math.floor(pick * hs.length)];
        await sleep(100);
      }
      return undefined;
    };
    let faultsDone = 0;
    const inject = async (f) => {
      const [what, role] = f.kind.split(':');
      const t = Date.now();
      const rec = { i: f.i, kind: f.kind, atMs: t - t0, target: role === 'kill' || role === 'client-kill' ? 'redis' : undefined };
      if (what === 'redis') {
        if (role === 'kill') {
          redisProc.proc.kill('SIGKILL');
          await redisProc.exited();
          await sleep(Math.round(f.downMs / 3));
          await startRedis();
        } else {
          await redis.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
          await redis.client('KILL', 'TYPE', 'pubsub');
        }
      } else {
        const host = await pickHost(role, f.pick);
        rec.target = host;
        if (host === undefined) return { ...rec, skipped: 'no such process up' };
        const p = procs.get(host);
        if (what === 'kill') {
          p.state = 'down';
          await p.proc.kill();
          // The replacement starts in the background (a node process takes seconds to be ready on
          // a loaded machine); the host is not a target again until it is up.
          const rec2 = { ...rec, downMs: f.downMs };
          restarts.push(
            sleep(Math.round(f.downMs / 4))
              .then(() => (stopping ? undefined : start(host, role)))
              .then(() => {
                rec2.recoveredAtMs = Date.now() - t0;
              })
              .catch((err) => {
                if (!stopping) log(`[chaos] restart of ${host} failed: ${String(err).slice(0, 500)}`);
              }),
          );
          return rec2;
        } else if (what === 'stop') {
          p.state = 'stopped';
          p.proc.proc.kill('SIGSTOP');
          await sleep(f.downMs);
          p.proc.proc.kill('SIGCONT');
          p.state = 'up';
        } else if (what === 'partition') {
          p.state = 'partitioned';
          await net.partition(host);
          await sleep(f.downMs);
          await net.heal(host);
          p.state = 'up';
        }
      }
      return { ...rec, downMs: f.downMs, recoveredAtMs: Date.now() - t0 };
    };
    let submitting = true;
    const faultLoop = (async () => {
      if (o.faultEveryMs === undefined) {
        for (const f of schedule) {
          await sleep(f.gapMs);
          if (stopping) return;
          faultLog.push(await inject(f));
          faultsDone++;
        }
        return;
      }
      // bench/faults: a fault every `faultEveryMs` (start to start) while runs are submitted.
      const kinds = o.faultKinds ?? FAULT_KINDS;
      const frnd = prng(o.seed ^ 0xfa017);
      let next = Date.now() + o.faultEveryMs;
      for (let i = 0; submitting && !stopping; i++) {
        await sleep(Math.max(0, next - Date.now()));
        if (!submitting || stopping) return;
        const f = { i, kind: frnd.pick(kinds), pick: frnd.next(), gapMs: 0, downMs: frnd.int(o.lockMs + 200, o.lockMs + 800) };
        faultLog.push(await inject(f));
        faultsDone++;
        next = Math.max(next + o.faultEveryMs, Date.now());
      }
    })();

    // Runs, paced over the expected length of the fault schedule (or as given), at most
    // `maxOpenRuns` accepted and not yet ended at a time.
    const expectedMs = schedule.reduce((s, f) => s + f.gapMs + f.downMs + 600, 0);
    const paceMs = o.paceMs ?? Math.max(5, Math.floor(expectedMs / Math.max(1, o.runs)));
    const submitLoop = (async () => {
      let inflight = 0;
      const one = async (i) => {
        const spec = runSpec(o.seed, i, rnd);
        try {
          const r = await api('POST', '/v1/runs', { tenant, workflow: 'chaos6', runId: spec.runId, inputs: spec.inputs, speculation: true });
          if (r.status === 201 || r.status === 200) accepted.set(spec.runId, Date.now() - t0);
          else {
            notAccepted++;
            log(`[chaos] run ${spec.runId} refused: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
          }
        } finally {
          inflight--;
        }
      };
      const pending = [];
      firstSubmitMs = Date.now() - t0;
      for (let i = 0; i < o.runs && !stopping; i++) {
        while (inflight >= o.concurrency || accepted.size + inflight - ended.size >= o.maxOpenRuns) await sleep(10);
        inflight++;
        pending.push(one(i));
        if (paceMs > 0) await sleep(paceMs);
      }
      await Promise.all(pending);
      submitting = false;
    })();

    // Run ends (read from Redis, which is the truth) and the operator for needs_attention.
    const watch = async () => {
      const open = [...accepted.keys()].filter((id) => !ended.has(id));
      if (open.length === 0) return;
      const pipe = redis.pipeline();
      for (const id of open) pipe.hget(`${prefix}:{run:${tenant}:${id}}:run`, 'status');
      const res = await pipe.exec();
      res.forEach(([err, st], k) => {
        if (err === null && st !== null && st !== 'running') {
          ended.set(open[k], st);
          endedAt.set(open[k], Date.now() - t0);
        }
      });
    };
    const operator = async () => {
      const r = await api('GET', `/v1/attention?tenant=${tenant}`, undefined, 2000, adminKey);
      if (r.status !== 200) return;
      const log2 = readEffectLogs(effectDir);
      for (const item of r.body.attention ?? []) {
        const shipped = log2.find((e) => e.tool === 'ship_parcel' && e.runId === item.runId && e.nodeId === item.nodeId);
        const body = shipped === undefined ? { resolution: 'failed', error: 'operator: the carrier has no record of this parcel' } : { resolution: 'succeeded', output: `shipped ${shipped.parcel}` };
        const res = await api('POST', `/v1/runs/${tenant}/${item.runId}/nodes/${item.nodeId}/attention`, body, 3000, adminKey);
        if (res.status === 200) attention[shipped === undefined ? 'resolvedFailed' : 'resolvedOk']++;
      }
    };
    let lastProgress = Date.now();
    const progress = () => {
      log(`[chaos] ${Math.round((Date.now() - t0) / 1000)} s: runs accepted ${accepted.size}/${o.runs}, ended ${ended.size}; faults ${faultsDone}/${o.faults}${faultLog.length > 0 ? ` (last ${faultLog.at(-1).kind} ${faultLog.at(-1).target ?? ''})` : ''}; attention resolved ${attention.resolvedOk + attention.resolvedFailed}`);
    };
    let background = true;
    const side = (async () => {
      while (background) {
        await Promise.all([watch().catch(() => undefined), operator().catch(() => undefined)]);
        if (Date.now() - lastProgress >= o.progressMs) {
          lastProgress = Date.now();
          progress();
        }
        await sleep(300);
      }
    })();

    await Promise.all([faultLoop, submitLoop]);
    await Promise.all(restarts);
    const faultsEndMs = faultLog.length === 0 ? Date.now() - t0 : Math.max(...faultLog.map((f) => f.recoveredAtMs ?? f.atMs));
    log(`[chaos] faults done at ${Math.round(faultsEndMs / 1000)} s; draining`);
    const drainDeadline = Date.now() + o.drainTimeoutMs;
    while (ended.size < accepted.size && Date.now() < drainDeadline) await sleep(250);
    const drainMs = Date.now() - t0 - faultsEndMs;
    // Let every ended run settle its attempts and outcomes (the recovery index empties of the
    // tenant's runs) and the estimator catch up on the outcomes stream; at most 30 s.
    const settleDeadline = Date.now() + 30_000;
    for (;;) {
      await sleep(500);
      const groups = await redis.xinfo('GROUPS', `${prefix}:{ctl}:outcomes`).catch(() => []);
      const g = groups.map((x) => {
        const m = {};
        for (let k = 0; k + 1 < x.length; k += 2) m[x[k]] = x[k + 1];
        return m;
      });
      const idle = g.every((x) => Number(x.pending) === 0 && (x.lag === null || Number(x.lag) === 0));
      // An ended run stays in the recovery index until every attempt it started is settled (D1).
      const active = (await redis.zrange(`${prefix}:{ctl}:active`, 0, -1).catch(() => [])).filter((m) => m.startsWith(`${tenant}:`));
      if ((idle && active.length === 0 && Date.now() > settleDeadline - 27_000) || Date.now() > settleDeadline) break;
    }
    background = false;
    await side;
    progress();

    const history = await collectHistory({
      redis,
      prefix,
      tenant,
      runIds: [...accepted.keys()],
      effectDir,
      api: async (path) => (await api('GET', path)).body,
    });
    const result = checkHistory(history);
    const summary = {
      seed: o.seed,
      ...(o.breakName === '' ? {} : { break: o.breakName }),
      runs: o.runs,
      faults: o.faults,
      accepted: accepted.size,
      notAccepted,
      throttled,
      ended: ended.size,
      faultsInjected: faultLog.filter((f) => f.skipped === undefined).length,
      faultKinds: Object.fromEntries([...new Set(faultLog.map((f) => f.kind))].map((k) => [k, faultLog.filter((f) => f.kind === k && f.skipped === undefined).length])),
      attention,
      unexpectedExits,
      durationMs: Date.now() - t0,
      faultsPhaseMs: faultsEndMs,
      drainMs,
      counts: result.counts,
      violationsByInvariant: Object.fromEntries([...new Set(result.violations.map((x) => x.invariant))].map((k) => [k, result.violations.filter((x) => x.invariant === k).length])),
      replay: replayCommand(o),
    };
    const ends = [...endedAt.values()].sort((a, b) => a - b);
    for (const f of faultLog) {
      const end = f.recoveredAtMs ?? f.atMs;
      const after = ends.find((x) => x >= end);
      if (after !== undefined) f.firstRunEndAfterMs = after - end;
    }
    const timeline = { firstSubmitMs, faultsEndMs, lastEndMs: ends.at(-1) ?? 0, endsMs: ends };
    return { ok: result.ok, violations: result.violations, summary, faultLog, history, timeline };
  } finally {
    clearInterval(trimLines);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
