/**
 * Issue 11: the CI chaos campaign. One seeded campaign of 200 runs and 40 faults covering every
 * fault kind (SIGKILL and SIGSTOP of workers, schedulers and the estimator, Redis kill -9 and
 * restart on its AOF, CLIENT KILL, network partitions of a worker and a scheduler), real
 * processes in their own network namespaces (packages/chaos). The history checker must find every
 * invariant intact. Then the same real history, doctored one invariant at a time, must fail the
 * checker: the checker can fail.
 *
 * KNOWN_OPEN lists invariants broken by defects that are known and not fixed yet, with the
 * reason; their violations are printed, not hidden. Issue 11 D1 (attempts of a fenced
 * speculation left unsettled, leaking reservations) is fixed, so `attempts_settled` is checked;
 * so is the reservation leak of a scheduler killed after losing a launch race (`ledger_tenant`,
 * fixed in recovery.ts: the sweep matches a launch to its reservation id), so it is empty.
 */
import { type CampaignResult, checkHistory, runCampaign } from '@gambit/chaos/campaign-api';
import { beforeAll, describe, expect, it } from 'vitest';

const SEED = 20261207;
const KNOWN_OPEN: ReadonlyMap<string, string> = new Map();

describe('chaos campaign (issue 11): 200 runs, 40 faults of every kind', () => {
  let r: CampaignResult;
  beforeAll(async () => {
    r = await runCampaign({ runs: 200, faults: 40, seed: SEED, log: (l: string) => process.stderr.write(`${l}\n`), progressMs: 15_000 });
  }, 900_000);

  it('accepts every run, injects every fault kind, and every invariant holds', () => {
    const s = r.summary;
    process.stderr.write(`${JSON.stringify(s)}\n`);
    expect(s.accepted).toBe(200);
    expect(s.faultsInjected).toBe(40);
    expect(Object.keys(s.faultKinds).sort()).toEqual(
      ['kill:estimator', 'kill:scheduler', 'kill:worker', 'partition:scheduler', 'partition:worker', 'redis:client-kill', 'redis:kill', 'stop:estimator', 'stop:scheduler', 'stop:worker'].sort(),
    );
    for (const v of r.violations) process.stderr.write(`VIOLATION ${v.invariant} ${v.runId ?? ''}: ${v.detail}${KNOWN_OPEN.has(v.invariant) ? ` (known open: ${KNOWN_OPEN.get(v.invariant)})` : ''}\n`);
    const unexpected = r.violations.filter((v) => !KNOWN_OPEN.has(v.invariant));
    expect(unexpected, `replay: ${s.replay}`).toEqual([]);
    expect((s.counts.succeeded ?? 0) + (s.counts.failed ?? 0) + (s.counts.cancelled ?? 0)).toBe(200);
  });

  it('a doctored history fails the checker, one invariant at a time', () => {
    const base = r.history;
    const doctor = (f: (h: typeof base) => void) => {
      const h = structuredClone(base);
      f(h);
      return new Set(checkHistory(h).violations.map((v) => v.invariant));
    };
    const succeeded = base.runs.find((x) => x.header.status === 'succeeded' && x.nodes.ship?.state === 'succeeded');
    expect(succeeded).toBeDefined();
    const runId = succeeded?.runId as string;
    const at = (h: typeof base) => h.runs.find((x) => x.runId === runId) as (typeof base.runs)[number];
    // An effect applied twice: the parcel shipped again (as a retry without its key check would).
    expect(doctor((h) => h.effectLog.push({ ...h.effectLog.find((e) => e.runId === runId && e.tool === 'ship_parcel'), tryNo: 2 }))).toContain('no_effect_twice');
    // A charge without its key check.
    expect(doctor((h) => h.charges.push({ ...h.charges.find((c) => c.runId === runId) }))).toContain('no_effect_twice');
    // A run that never ended.
    expect(doctor((h) => { at(h).header.status = 'running'; })).toContain('runs_end');
    // Two committed results for one node.
    expect(doctor((h) => { const a = at(h).attempts.find((x) => x.nodeId === 'charge'); at(h).attempts.push({ ...a, attemptId: 'charge.a9', epoch: 9 }); })).toContain('one_commit');
    // A staged effect of a wrong guess released.
    expect(doctor((h) => at(h).effects.push({ type: 'message', to: 'x', body: 'your nonsense case is open' }))).toContain('no_miss_release');
    // A late write: an output taken from a fenced attempt.
    expect(doctor((h) => { const n = at(h).nodes.charge; n.output = 'late'; })).toContain('no_late_write');
    // An attempt left running in an ended run (D1's shape).
    expect(doctor((h) => { const a = at(h).attempts[0]; a.status = 'running'; })).toContain('attempts_settled');
    // A ledger off by one nano-dollar, per run and per tenant.
    expect(doctor((h) => { at(h).header.costNanoUsd = String(Number(at(h).header.costNanoUsd ?? 0) + 1); })).toContain('ledger_run');
    expect(doctor((h) => { h.budget.reservedNanoUsd = '1'; })).toContain('ledger_tenant');
    expect(doctor((h) => { h.budget.spentNanoUsd = String(Number(h.budget.spentNanoUsd ?? 0) + 1); })).toContain('ledger_tenant');
    // A scored guess counted twice in its posterior.
    expect(doctor((h) => { const c = Object.values(h.posteriors)[0]; if (c !== undefined) c.posterior.hits = String(Number(c.posterior.hits ?? 0) + 1); })).toContain('posterior_once');
  });
});
