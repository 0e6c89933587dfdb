// bench/faults (issue 11 item 5): throughput under a fault every 2 s as a ratio to fault-free
// throughput in the same invocation, backlog drain time after the faults stop, and recovery time
// per fault kind. Two seeded chaos campaigns (packages/chaos) on fresh stacks, the same workload
// and load (a closed loop of at most --open runs accepted and not ended):
//   A. no faults;   B. a fault every --every-ms (start to start) while runs are submitted.
// Throughput = runs ended per second from the first submit until the faults stop (B; or until
// the last run ends, if that is earlier: a killed process's replacement may still be starting
// when every run has ended, and that time has no work to measure) or the last run ends (A). Drain = last run end − end of the last fault (B). Recovery per fault =
// from the fault's end (process ready again, link healed, SIGCONT, Redis ready) to the first run
// that ends after it; for a kill, also the replacement's start-up time. Where the time goes
// (B): per role, the share of the fault window with none of its processes serving and with only
// some (killed and not yet ready again, stopped, or partitioned). Goal (set before
// measuring): ratio ≥ 0.8. Both campaigns also run the history checker; a broken invariant fails
// the benchmark. Needs root and iproute2 (network namespaces), and a build.
//
// Usage: node bench/faults/run.mjs [--runs 150] [--every-ms 2000] [--open 24] [--seed 1]
//        [--kinds kill:worker,stop:worker,...]
// Writes bench/results/faults.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAULT_KINDS, runCampaign } from '@gambit/chaos/campaign-api';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : process.argv[i + 1];
};
const runs = Number(arg('runs', '150'));
const everyMs = Number(arg('every-ms', '2000'));
const open = Number(arg('open', '24'));
const seed = Number(arg('seed', '1'));
const kinds = arg('kinds', FAULT_KINDS.join(',')).split(',');
for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new Error(`--kinds: unknown fault kind ${k} (known: ${FAULT_KINDS.join(', ')})`);
const GOAL = 0.8;
const log = (l) => process.stderr.write(`${l}\n`);
const median = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

async function phase(label, extra) {
  log(`[faults] phase ${label}: ${runs} runs`);
  const r = await runCampaign({ runs, faults: 0, seed, paceMs: 0, maxOpenRuns: open, log, progressMs: 10_000, ...extra });
  const t = r.timeline;
  const windowEnd = extra.faultEveryMs === undefined ? t.lastEndMs : Math.min(t.faultsEndMs, t.lastEndMs);
  const endedInWindow = t.endsMs.filter((x) => x <= windowEnd).length;
  const seconds = Math.max(0.001, (windowEnd - t.firstSubmitMs) / 1000);
  // The window as measured before (to the faults' end even when every run ended before it).
  const oldEnd = extra.faultEveryMs === undefined ? t.lastEndMs : t.faultsEndMs;
  const throughputToFaultsEnd = t.endsMs.filter((x) => x <= oldEnd).length / Math.max(0.001, (oldEnd - t.firstSubmitMs) / 1000);
  return { r, throughput: endedInWindow / seconds, throughputToFaultsEnd, endedInWindow, seconds, windowStartMs: t.firstSubmitMs, windowEndMs: windowEnd, drainMs: extra.faultEveryMs === undefined ? 0 : Math.max(0, t.lastEndMs - t.faultsEndMs) };
}

/**
 * Per role, the share of [from, to] with none of its processes serving and with some down: a
 * process is down from its fault's start until it is back (a kill: its replacement ready; a stop
 * or a partition: SIGCONT or healed). Hosts per role as the campaign runs them (2 schedulers,
 * 2 workers, 1 estimator).
 */
function availability(faultLog, from, to) {
  const hosts = { scheduler: ['sched1', 'sched2'], worker: ['worker1', 'worker2'], estimator: ['estim'] };
  const down = new Map();
  for (const f of faultLog) {
    if (f.skipped !== undefined || f.target === undefined || f.target === 'redis') continue;
    const end = f.recoveredAtMs ?? to;
    down.set(f.target, [...(down.get(f.target) ?? []), [f.atMs, end]]);
  }
  const isDown = (h, t) => (down.get(h) ?? []).some(([a, b]) => t >= a && t < b);
  const out = {};
  const span = Math.max(1, to - from);
  for (const [role, hs] of Object.entries(hosts)) {
    let none = 0;
    let some = 0;
    for (let t = from; t < to; t += 50) {
      const d = hs.filter((h) => isDown(h, t)).length;
      if (d === hs.length) none += 50;
      else if (d > 0) some += 50;
    }
    out[role] = { noneServing: Number((none / span).toFixed(3)), someDown: Number((some / span).toFixed(3)) };
  }
  return out;
}

const a = await phase('A (no faults)', {});
const b = await phase(`B (a fault every ${everyMs} ms)`, { faultEveryMs: everyMs, faultKinds: kinds });
const ratio = b.throughput / a.throughput;
const perKind = {};
for (const k of kinds) {
  const fs = b.r.faultLog.filter((f) => f.kind === k && f.skipped === undefined);
  perKind[k] = {
    count: fs.length,
    medianRecoveryMs: median(fs.map((f) => f.firstRunEndAfterMs).filter((x) => x !== undefined)),
    ...(k.startsWith('kill:') ? { medianRestartMs: median(fs.filter((f) => f.recoveredAtMs !== undefined).map((f) => f.recoveredAtMs - f.atMs)) } : {}),
  };
}
const avail = availability(b.r.faultLog, b.windowStartMs, b.windowEndMs);
const out = {
  benchmark: 'faults',
  headline: [
    `throughput under a fault every ${everyMs} ms: ${b.throughput.toFixed(2)} runs/s vs ${a.throughput.toFixed(2)} fault-free = ratio ${ratio.toFixed(2)} (goal ≥ ${GOAL})`,
    `backlog drain after the last fault: ${(b.drainMs / 1000).toFixed(1)} s; faults injected: ${b.r.faultLog.length}`,
  ],
  goal: GOAL,
  ratio,
  meetsGoal: ratio >= GOAL,
  /** The ratio with B's window ending at the faults' end even when every run ended before it. */
  ratioWindowToFaultsEnd: b.throughputToFaultsEnd / a.throughput,
  settings: { runs, everyMs, maxOpenRuns: open, seed, kinds },
  faultFree: { throughputRunsPerSec: a.throughput, seconds: a.seconds, ended: a.endedInWindow, invariantsHeld: a.r.ok },
  underFaults: { throughputRunsPerSec: b.throughput, seconds: b.seconds, endedDuringFaults: b.endedInWindow, drainMs: b.drainMs, faults: b.r.faultLog.length, invariantsHeld: b.r.ok, violations: b.r.violations.slice(0, 20) },
  recoveryByKind: perKind,
  availabilityUnderFaults: avail,
  machine: '2 cores, shared; numbers are noisy under other load',
};
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'faults.json'), `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`${out.headline.join('\n')}\n${JSON.stringify({ recoveryByKind: perKind, availabilityUnderFaults: avail }, null, 2)}\n`);
if (!a.r.ok || !b.r.ok) {
  process.stdout.write(`faults: a broken invariant (replay: ${a.r.ok ? b.r.summary.replay : a.r.summary.replay})\n`);
  process.exit(1);
}
