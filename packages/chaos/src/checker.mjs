// The history checker of the chaos campaign (issue 11). `collectHistory` reads what the campaign
// left behind (Redis, the tools' effect logs, the scheduler API); `checkHistory` is a pure
// function of that history, so a test can feed it a doctored one and see it fail. Each
// invariant has a name; a violation names the run (and node) and says what was seen.
//
// Invariants:
//   runs_end              every accepted run ends (succeeded, failed or cancelled)
//   one_commit            no node has two committed results; a succeeded node's output is its
//                         committed attempt's output
//   no_miss_release       no staged effect of a missed speculation is released (the released
//                         message names the real route, not a wrong guess)
//   no_effect_twice       no irreversible or staged effect applied twice (ship log, charges,
//                         released messages: at most one per run)
//   no_late_write         no output accepted from a fenced, failed or superseded attempt
//   attempts_settled      every attempt of an ended run is settled: not queued or running, and
//                         its finishedAtMs set (issue 11 D1 when broken)
//   ledger_run            run costNanoUsd / specCostNanoUsd equal the sum over its attempts
//   ledger_tenant         the tenant's open reservations are 0 (no `open:*`), and its spent
//                         waste equals the cost of every closed, non-hit speculation
//   posterior_once        every scored guess (hit, miss, shadow) is counted once in its class's
//                         posterior, an outcome with `evidence: false` (M5: a stream-settled
//                         upstream) never, and every outcome id is in the class's seen set
//
// An ended, settled run is folded into its compact record (issue 13 item 3): its node states,
// attempts, outcomes and effects are then read from the record (`expandRunRecord`), which keeps
// every field these invariants read (the campaign's tenant keeps outputs, so outputs and released
// effects are in it too). A run not folded yet is read from its live keys.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeAttempt, decodeNode, expandRunRecord } from '@gambit/shared/redis';

export const INVARIANTS = [
  'runs_end',
  'one_commit',
  'no_miss_release',
  'no_effect_twice',
  'no_late_write',
  'attempts_settled',
  'ledger_run',
  'ledger_tenant',
  'posterior_once',
];

const ENDED = new Set(['succeeded', 'failed', 'cancelled']);

/** Reads every `effects-*.jsonl` line written by the chaos tools (effect-tools.mjs). */
export function readEffectLogs(dir) {
  const out = [];
  for (const f of readdirSync(dir)) {
    if (!f.startsWith('effects-') || !f.endsWith('.jsonl')) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line === '') continue;
      // A process SIGKILLed mid-write can leave a torn last line: it is not an applied effect.
      try {
        out.push(JSON.parse(line));
      } catch {
        // torn line
      }
    }
  }
  return out;
}

/**
 * Everything the checker needs, read after the campaign quiesced.
 * @param {{ redis: import('ioredis').Redis, prefix: string, tenant: string, runIds: string[], effectDir: string, api: (path: string) => Promise<any> }} a
 */
export async function collectHistory(a) {
  const { redis, prefix, tenant } = a;
  const tag = (runId) => `${prefix}:{run:${tenant}:${runId}}`;
  const runs = [];
  for (const runId of a.runIds) {
    const [header, nodesRaw, attemptsRaw, effects, outcomes, rec] = await Promise.all([
      redis.hgetall(`${tag(runId)}:run`),
      redis.hgetall(`${tag(runId)}:nodes`),
      redis.hgetall(`${tag(runId)}:attempts`),
      redis.lrange(`${tag(runId)}:effects`, 0, -1),
      redis.lrange(`${tag(runId)}:outcomes`, 0, -1),
      redis.get(`${tag(runId)}:rec`),
    ]);
    const view = await a.api(`/v1/runs/${tenant}/${runId}`);
    if (rec !== null) {
      const x = expandRunRecord(rec, Number(header.createdAtMs ?? 0), `run ${tenant}/${runId}`);
      // Without outputs and effects the miss-release and effect invariants could not be checked.
      if (!x.outputsKept) throw new Error(`chaos: run ${runId} was folded without its outputs: the campaign's tenant must keep outputs (keepOutputs)`);
      runs.push({
        runId,
        header,
        nodes: Object.fromEntries(x.nodes),
        attempts: [...x.attempts.values()],
        effects: x.effects.map((e) => JSON.parse(e)),
        outcomes: x.outcomes.map((o) => JSON.parse(o)),
        view,
        folded: true,
      });
      continue;
    }
    // Issue 13 item 3: the live hashes hold the compact state encoding (state-codec.ts); a
    // succeeded node's output is kept in its auth attempt, and read from there.
    const attempts = Object.entries(attemptsRaw).map(([id, v]) => decodeAttempt(v, id));
    const output = (id) => attempts.find((a) => a.attemptId === id)?.output;
    runs.push({
      runId,
      header,
      nodes: Object.fromEntries(Object.entries(nodesRaw).map(([k, v]) => [k, decodeNode(v, output)])),
      attempts,
      effects: effects.map((e) => JSON.parse(e)),
      outcomes: outcomes.map((o) => JSON.parse(o)),
      view,
    });
  }
  const budget = await redis.hgetall(`${prefix}:{tenant:${tenant}}:budget`);
  const charges = (await redis.lrange(`${prefix}:{tenant:${tenant}}:charges`, 0, -1)).map((c) => JSON.parse(c));
  const classes = new Set(runs.flatMap((r) => r.outcomes.map((o) => o.edgeClass)));
  const posteriors = {};
  for (const c of classes) {
    posteriors[c] = {
      posterior: await redis.hgetall(`${prefix}:{class:${c}}:posterior`),
      seen: await redis.zrange(`${prefix}:{class:${c}}:seen`, 0, -1),
    };
  }
  return { tenant, runs, budget, charges, posteriors, effectLog: readEffectLogs(a.effectDir) };
}

/**
 * Checks the invariants on a history. Returns { ok, violations, counts }.
 * @param {Awaited<ReturnType<typeof collectHistory>>} h
 */
export function checkHistory(h) {
  const violations = [];
  const v = (invariant, runId, detail) => violations.push({ invariant, runId, detail });
  const counts = { runs: h.runs.length, folded: h.runs.filter((r) => r.folded === true).length, succeeded: 0, failed: 0, cancelled: 0, attempts: 0, effects: h.effectLog.length, charges: h.charges.length, outcomes: 0 };
  const byRun = (list, key = 'runId') => {
    const m = new Map();
    for (const x of list) m.set(x[key], [...(m.get(x[key]) ?? []), x]);
    return m;
  };
  const ships = byRun(h.effectLog.filter((e) => e.tool === 'ship_parcel'));
  const charges = byRun(h.charges);
  let expectedSpent = 0;
  const wasteOf = []; // [settlement id, cost] of every closed non-hit speculation
  const expectedClass = new Map();

  for (const r of h.runs) {
    const status = r.header.status;
    if (status !== undefined && counts[status] !== undefined) counts[status]++;
    counts.attempts += r.attempts.length;
    counts.outcomes += r.outcomes.length;
    if (!ENDED.has(status)) {
      v('runs_end', r.runId, `status ${status ?? 'missing'}`);
      continue;
    }
    const byId = new Map(r.attempts.map((a) => [a.attemptId, a]));
    // one_commit, no_late_write
    for (const [nodeId, n] of Object.entries(r.nodes)) {
      const mine = r.attempts.filter((a) => a.nodeId === nodeId);
      const authOk = mine.filter((a) => a.kind === 'authoritative' && a.status === 'succeeded');
      if (authOk.length > 1) v('one_commit', r.runId, `node ${nodeId}: ${authOk.length} authoritative attempts succeeded`);
      if (n.state === 'succeeded') {
        const committed = n.auth === undefined ? undefined : byId.get(n.auth);
        if (committed === undefined) v('one_commit', r.runId, `node ${nodeId} succeeded without a committed attempt`);
        else {
          if (committed.status !== 'succeeded') v('no_late_write', r.runId, `node ${nodeId} took its output from attempt ${committed.attemptId} in status ${committed.status}`);
          if (committed.output !== n.output) v('no_late_write', r.runId, `node ${nodeId} output ${JSON.stringify(n.output)} differs from its attempt's ${JSON.stringify(committed.output)}`);
          if (n.source === 'speculative' && authOk.length > 0) v('one_commit', r.runId, `node ${nodeId} committed a speculation and an authoritative result`);
        }
      }
      // An authoritative attempt never loses an accepted output: one that ended cancelled or
      // failed with an output took a write after it was fenced. (A speculative attempt may
      // finish, be accepted, and be discarded on a miss afterwards: that is not a late write.)
      for (const a of mine)
        if (a.kind === 'authoritative' && (a.status === 'cancelled' || a.status === 'superseded' || a.status === 'failed') && a.output !== undefined && a.resolvedBy === undefined)
          v('no_late_write', r.runId, `authoritative attempt ${a.attemptId} is ${a.status} but has an accepted output`);
      // A speculative attempt committed as the node's result must be the live one of its epoch.
      if (n.state === 'succeeded' && n.source === 'speculative' && n.auth !== undefined) {
        const c = byId.get(n.auth);
        if (c !== undefined && c.kind !== 'speculative') v('no_late_write', r.runId, `node ${nodeId} says speculative but committed ${c.kind} attempt ${c.attemptId}`);
      }
    }
    // attempts_settled (D1)
    for (const a of r.attempts) {
      if (a.status === 'queued' || a.status === 'running' || a.status === 'needs_attention') v('attempts_settled', r.runId, `attempt ${a.attemptId} (${a.kind}) still ${a.status} in an ended run`);
      else if (a.finishedAtMs === undefined && a.startedAtMs !== undefined) v('attempts_settled', r.runId, `attempt ${a.attemptId} (${a.kind}, ${a.status}) started but has no finishedAtMs`);
    }
    // no_miss_release, no_effect_twice
    const route = r.nodes.classify?.output;
    const messages = r.effects.filter((e) => e.type === 'message');
    if (messages.length > 1) v('no_effect_twice', r.runId, `${messages.length} messages released`);
    for (const m of messages)
      if (route === undefined || m.body !== `your ${route} case is open`) v('no_miss_release', r.runId, `released ${JSON.stringify(m.body)} but the route was ${JSON.stringify(route)}`);
    const shipped = ships.get(r.runId) ?? [];
    if (shipped.length > 1) v('no_effect_twice', r.runId, `ship_parcel applied ${shipped.length} times (tries ${shipped.map((s) => `${s.attemptId}#${s.tryNo}`).join(', ')})`);
    const charged = charges.get(r.runId) ?? [];
    if (charged.length > 1) v('no_effect_twice', r.runId, `charge_card applied ${charged.length} times`);
    // ledger_run
    const sum = r.attempts.reduce((s, a) => s + (a.costNanoUsd ?? 0), 0);
    const spec = r.attempts.filter((a) => a.kind === 'speculative').reduce((s, a) => s + (a.costNanoUsd ?? 0), 0);
    if (Number(r.header.costNanoUsd ?? 0) !== sum) v('ledger_run', r.runId, `run costNanoUsd ${r.header.costNanoUsd ?? 0} != sum over attempts ${sum}`);
    if (Number(r.header.specCostNanoUsd ?? 0) !== spec) v('ledger_run', r.runId, `run specCostNanoUsd ${r.header.specCostNanoUsd ?? 0} != sum over speculative attempts ${spec}`);
    if (r.view?.dollars?.total?.nanoUsd !== undefined && r.view.dollars.total.nanoUsd !== sum) v('ledger_run', r.runId, `API total ${r.view.dollars.total.nanoUsd} != ${sum}`);
    // ledger_tenant: the waste each closed speculation settles
    for (const n of Object.values(r.nodes))
      for (const [attemptId, c] of Object.entries(n.closed ?? {}))
        if (c.kind !== 'hit') {
          expectedSpent += byId.get(attemptId)?.costNanoUsd ?? 0;
          wasteOf.push([`${r.runId}:${attemptId}`, byId.get(attemptId)?.costNanoUsd ?? 0]);
        }
    // posterior_once
    for (const o of r.outcomes) {
      const e = expectedClass.get(o.edgeClass) ?? { hits: 0, misses: 0, ids: [] };
      // M5: an outcome with `evidence: false` (a stream-settled upstream) is counted by the
      // estimator's value counters, never in the posterior; its id is still in the seen set.
      const evidence = o.evidence !== false;
      if (evidence && (o.kind === 'hit' || o.kind === 'shadow_hit')) e.hits++;
      if (evidence && (o.kind === 'miss' || o.kind === 'shadow_miss')) e.misses++;
      e.ids.push(o.outcomeId);
      expectedClass.set(o.edgeClass, e);
    }
  }
  // A charge or a shipment of a run the campaign does not know is an effect nobody accounts for.
  const known = new Set(h.runs.map((r) => r.runId));
  for (const runId of new Set([...ships.keys(), ...charges.keys()])) if (!known.has(runId)) v('no_effect_twice', runId, 'effect of an unknown run');

  const reserved = Number(h.budget.reservedNanoUsd ?? 0);
  if (reserved !== 0) v('ledger_tenant', undefined, `tenant ${h.tenant} reservedNanoUsd ${reserved} != 0`);
  const open = Object.keys(h.budget).filter((k) => k.startsWith('open:'));
  if (open.length > 0) v('ledger_tenant', undefined, `tenant ${h.tenant} has ${open.length} open reservations: ${open.slice(0, 5).join(', ')}`);
  const spent = Number(h.budget.spentNanoUsd ?? 0);
  if (spent !== expectedSpent) {
    // Which settlements differ (each books its running total as `waste:<run>:<attempt>`).
    const off = wasteOf.filter(([id, cost]) => h.budget[`waste:${id}`] !== undefined && Number(h.budget[`waste:${id}`]) !== cost).map(([id, cost]) => `${id} booked ${h.budget[`waste:${id}`]} of ${cost}`);
    v('ledger_tenant', undefined, `tenant ${h.tenant} spentNanoUsd ${spent} != waste of closed non-hit speculations ${expectedSpent}${off.length > 0 ? ` (${off.slice(0, 5).join('; ')})` : ''}`);
  }

  for (const [cls, e] of expectedClass) {
    const p = h.posteriors[cls];
    if (p === undefined) {
      v('posterior_once', undefined, `class ${cls}: no posterior`);
      continue;
    }
    const hits = Number(p.posterior.hits ?? 0);
    const misses = Number(p.posterior.misses ?? 0);
    if (hits !== e.hits || misses !== e.misses) v('posterior_once', undefined, `class ${cls}: posterior hits/misses ${hits}/${misses}, outcomes say ${e.hits}/${e.misses}`);
    const seen = new Set(p.seen);
    const missing = e.ids.filter((id) => !seen.has(id));
    if (missing.length > 0) v('posterior_once', undefined, `class ${cls}: ${missing.length} outcome ids never reached the estimator (${missing.slice(0, 3).join(', ')})`);
    if (p.seen.length !== e.ids.length) v('posterior_once', undefined, `class ${cls}: seen set has ${p.seen.length} ids, runs recorded ${e.ids.length} outcomes`);
  }
  return { ok: violations.length === 0, violations, counts };
}
