/**
 * Issue 11, "a deliberately broken invariant makes the campaign fail": the same small seeded
 * campaign (real processes in their own network namespaces, packages/chaos) run against the chaos
 * tools as they are and against each deliberate break of them (GAMBIT_CHAOS_BREAK, honoured only
 * by packages/chaos/src/effect-tools.mjs). As they are, every invariant holds; with a break, the
 * checker reports exactly the invariant that break violates, for every run, and the campaign
 * prints a replay command that names the break. No faults are injected: the breaks need none to
 * show, so what differs between the campaigns is the break alone (the CI campaign,
 * campaign.test.ts, passes with faults of every kind).
 */
import { BREAKS, type CampaignResult, runCampaign } from '@gambit/chaos/campaign-api';
import { describe, expect, it } from 'vitest';

const SEED = 7101;
const RUNS = 12;

async function campaign(breakName: string): Promise<CampaignResult> {
  return runCampaign({ runs: RUNS, faults: 0, seed: SEED, breakName, log: (l: string) => process.stderr.write(`${l}\n`), progressMs: 15_000 });
}

describe('a deliberately broken invariant makes the campaign fail (issue 11)', () => {
  it('the campaign against the tools as they are: every invariant holds', async () => {
    const r = await campaign('');
    for (const v of r.violations) process.stderr.write(`VIOLATION ${v.invariant} ${v.runId ?? ''}: ${v.detail}\n`);
    expect(r.summary.accepted).toBe(RUNS);
    expect(r.summary.break).toBeUndefined();
    expect(r.violations).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.summary.replay).toBe(`pnpm chaos --runs ${RUNS} --faults 0 --seed ${SEED}`);
  }, 600_000);

  it('skip_idempotency_check: an effect applied again without its key check fails no_effect_twice in every run', async () => {
    expect(BREAKS.skip_idempotency_check?.invariant).toBe('no_effect_twice');
    const r = await campaign('skip_idempotency_check');
    expect(r.summary.accepted).toBe(RUNS);
    expect(r.summary.break).toBe('skip_idempotency_check');
    expect(r.ok).toBe(false);
    expect(Object.keys(r.summary.violationsByInvariant)).toEqual(['no_effect_twice']);
    // One per run: the parcel shipped twice, under one idempotency key, by two tries.
    const runs = new Set(r.violations.map((v) => v.runId));
    expect(runs.size).toBe(RUNS);
    for (const v of r.violations) expect(v.detail).toMatch(/^ship_parcel applied 2 times/);
    const ships = r.history.effectLog.filter((e) => e.tool === 'ship_parcel');
    expect(ships).toHaveLength(2 * RUNS);
    for (const runId of runs) expect(new Set(ships.filter((e) => e.runId === runId).map((e) => e.key)).size).toBe(1);
    // The built-in charge_card, which checks its key, charged once per run all the same.
    expect(r.history.charges).toHaveLength(RUNS);
    expect(r.summary.replay).toBe(`pnpm chaos --runs ${RUNS} --faults 0 --seed ${SEED} --break skip_idempotency_check`);
  }, 600_000);

  it('unbooked_spend: a spend outside the attempts ledger fails ledger_run in every run', async () => {
    expect(BREAKS.unbooked_spend?.invariant).toBe('ledger_run');
    const r = await campaign('unbooked_spend');
    expect(r.summary.accepted).toBe(RUNS);
    expect(r.ok).toBe(false);
    expect(Object.keys(r.summary.violationsByInvariant)).toEqual(['ledger_run']);
    expect(new Set(r.violations.map((v) => v.runId)).size).toBe(RUNS);
    for (const v of r.violations) expect(v.detail).toMatch(/costNanoUsd|API total/);
  }, 600_000);
});
