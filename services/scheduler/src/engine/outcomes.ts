/**
 * Settles the outcomes of speculations (M4, M5, M9, M10): for every closed speculation of a run
 * (hit, miss, cancelled) and every guess that was not launched on (a WAIT for any reason: stage,
 * below threshold, budget, killed, ...) whose upstream has finished, one outcome per edge class,
 * joined to its decision by id. Not-launched guesses are scored as `shadow_hit` / `shadow_miss`
 * with the WAIT's reason: learning is never blocked by the rule (M5), and a class whose P is
 * below the threshold is still watched by the drift detector (M9). A speculation launched by the
 * stream on an upstream output it had settled (M8) books that edge's value with `evidence: false`
 * (its hit was certain, not predicted), and the guess of the WAIT it overturned is scored instead. A hit's seconds saved compare the node's
 * availability with the non-speculative schedule; a miss's waste is the attempt's billed cost,
 * so it is settled only once the worker has recorded the usage of the cancelled attempt.
 *
 * Order per outcome, each step idempotent: publish (the estimator dedupes by outcome id),
 * settle the tenant's budget (once per settlement id), then record it in the run (once per
 * outcome id). A crash anywhere repeats the steps on the next reconcile, never double counts.
 */
import { type DecisionReason, type DecisionRecord, type Logger, matchOutput, nanoToUsd, type Outcome, type OutcomeKind } from '@gambit/shared';
import { type KeySpace, markWasteBooked, type NodeState, type RedisLike, recordOutcome, settleBudget } from '@gambit/shared/redis';
import { guessAttemptId, isLlmPredictor } from '../predictors/llm.js';
import type { SpeculationControl } from './control.js';
import { readyAtMs, type RunSnapshot } from './run-view.js';
import { traceOutcome } from './tracing.js';
import type { Metrics } from '@gambit/shared/telemetry';
import type { Tracer } from '@opentelemetry/api';

export interface OutcomeDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly control: SpeculationControl;
  readonly log: Logger;
  readonly metrics?: Metrics;
  readonly tracer?: Tracer;
}

/** `up=class,up2=class2` -> pairs. */
export function parseClasses(cls: string): Array<{ up: string; classId: string }> {
  if (cls === '') return [];
  return cls.split(',').map((p) => {
    const i = p.indexOf('=');
    return { up: p.slice(0, i), classId: p.slice(i + 1) };
  });
}

interface Pending {
  readonly outcome: Outcome;
  readonly nodeId: string;
}

/** Seconds by which a speculative result beat the non-speculative schedule (≥ 0). */
export function secondsSaved(s: RunSnapshot, nodeId: string, attemptId: string): number {
  const n = s.nodes.get(nodeId);
  const a = s.attempts.get(attemptId);
  const ready = readyAtMs(s, nodeId);
  if (n?.finishedAtMs === undefined || a?.startedAtMs === undefined || a.finishedAtMs === undefined || ready === undefined) return 0;
  const nonSpeculativeFinish = ready + (a.finishedAtMs - a.startedAtMs);
  return Math.max(0, nonSpeculativeFinish - n.finishedAtMs) / 1000;
}

/** M5/M7: whether `guess` for upstream `up` of `nodeId` matched its real output; undefined until `up` has succeeded (or without a guess). */
async function scoreGuess(s: RunSnapshot, nodeId: string, up: string, guess: string | undefined): Promise<boolean | undefined> {
  const u = s.nodes.get(up);
  const edge = (s.graph.incoming.get(nodeId) ?? []).find((e) => e.from === up);
  if (guess === undefined || u?.state !== 'succeeded' || u.output === undefined || edge === undefined) return undefined;
  return (await matchOutput(edge.match, guess, u.output)).matched;
}

async function outcomesOfClosed(s: RunSnapshot, nodeId: string, n: NodeState, nowMs: number): Promise<Pending[]> {
  const out: Pending[] = [];
  const { tenant, runId } = s.header;
  const base = { tenant, workflow: s.workflow.name, runId, fencingViolation: false, atMs: Math.round(nowMs) };
  for (const [attemptId, c] of Object.entries(n.closed)) {
    const pairs = parseClasses(c.cls);
    if (pairs.length === 0) continue;
    const a = s.attempts.get(attemptId);
    // M10: a paid guess this speculation was launched on is sunk: booked as guess spend on the
    // outcome of its own edge, on a hit and a miss alike, never as waste.
    const guessUsdOf = (up: string): number => {
      const g = s.attempts.get(guessAttemptId(nodeId, up));
      return g !== undefined && g.output !== undefined && a?.assumed[up] === g.output ? nanoToUsd(g.costNanoUsd) : 0;
    };
    // M5/M8: an upstream the stream had settled was known, not guessed, when this speculation
    // launched: its edge's outcome carries the value (seconds saved, waste) and no evidence.
    const settled = (up: string): boolean => c.st?.[up] === 1;
    const mk = (up: string, classId: string, kind: OutcomeKind, wasteUsd: number, saved: number): Pending => {
      const guessUsd = guessUsdOf(up);
      return {
        nodeId,
        outcome: {
          ...base,
          outcomeId: `${runId}:${attemptId}:${up}`,
          decisionId: c.d,
          edgeClass: classId,
          kind,
          wasteUsd,
          ...(guessUsd > 0 ? { guessUsd } : {}),
          secondsSaved: saved,
          ...(settled(up) ? { evidence: false } : {}),
        },
      };
    };
    if (c.kind === 'hit') {
      const saved = secondsSaved(s, nodeId, attemptId) / pairs.length;
      for (const p of pairs) out.push(mk(p.up, p.classId, 'hit', 0, saved));
      continue;
    }
    // A miss or cancel is settled once the attempt's usage is final (it has finished).
    if (a !== undefined && a.finishedAtMs === undefined) continue;
    const wasteUsd = nanoToUsd(a?.costNanoUsd ?? 0);
    // The miss (or cancel) is charged to the edge that caused it; a cancel with every guess
    // matched (its attempt never ran in time) is a hit of each edge, charged to none unless it
    // had already spent money.
    const unmatched = pairs.find((p) => c.ok?.[p.up] !== 1)?.up;
    const blamed = c.edge !== undefined && c.edge !== '' ? c.edge : (unmatched ?? (wasteUsd > 0 ? (pairs[0]?.up ?? '') : ''));
    for (const p of pairs) {
      if (p.up === blamed) out.push(mk(p.up, p.classId, c.kind === 'miss' ? 'miss' : 'cancelled', wasteUsd, 0));
      else if (c.ok?.[p.up] === 1) out.push(mk(p.up, p.classId, 'hit', 0, 0));
    }
    // M5: learning is never blocked. A cancel (a kill, a stream's re-decision, a lost slot, a
    // discarded cascade source, patience) says nothing about the guess, yet the guess exists: each
    // edge that got no hit or miss above is scored against the upstream's real output once the
    // upstream has ended, at no cost (shadow), under the speculation's own decision. Without this,
    // guesses cancelled before their upstream ended were never scored, and a class whose misses
    // are mostly caught early by the stream learned a hit rate above its real one.
    if (c.kind === 'miss') continue;
    for (const p of pairs) {
      if (p.up !== blamed && c.ok?.[p.up] === 1) continue; // scored as a hit above
      if (settled(p.up)) continue; // not a guess: the WAIT the stream overturned scores its guess
      const matched = c.ok?.[p.up] === 1 ? true : await scoreGuess(s, nodeId, p.up, a?.assumed[p.up]);
      if (matched === undefined) continue;
      out.push({
        nodeId,
        outcome: {
          ...base,
          outcomeId: `${runId}:score:${nodeId}:${attemptId}:${p.up}`,
          decisionId: c.d,
          edgeClass: p.classId,
          kind: matched ? 'shadow_hit' : 'shadow_miss',
          wasteUsd: 0,
          secondsSaved: 0,
        },
      });
    }
  }
  return out;
}

/** What `guessesToScore` reads of a decision result (decider.ts's DecisionResult has it). */
export interface GuessesOfDecision {
  readonly assumed: Readonly<Record<string, string>>;
  readonly classes: string;
  readonly cascadeFrom: Readonly<Record<string, string>>;
  readonly buy?: readonly { readonly up: string }[];
}

/**
 * M5: the guesses of a decision that launched nothing, to be scored when their upstreams end, or
 * undefined when there are none. A guess exists when the predictor produced one; not guesses:
 * a paid guess's stand-in (not bought yet), a cascade source's speculative output (not this
 * class's predictor), and an upstream output already settled by its stream (known, not guessed).
 */
export function guessesToScore(
  record: Pick<DecisionRecord, 'action' | 'decisionId' | 'reason'>,
  res: GuessesOfDecision,
  settled?: ReadonlyMap<string, string>,
): { d: string; assumed: Record<string, string>; cls: string; r: DecisionReason } | undefined {
  if (record.action !== 'WAIT') return undefined;
  const notGuesses = new Set([...(res.buy ?? []).map((b) => b.up), ...Object.keys(res.cascadeFrom), ...(settled?.keys() ?? [])]);
  const assumed: Record<string, string> = {};
  for (const [up, v] of Object.entries(res.assumed)) if (!notGuesses.has(up)) assumed[up] = v;
  if (Object.keys(assumed).length === 0) return undefined;
  return { d: record.decisionId, assumed, cls: res.classes, r: record.reason };
}

/**
 * Upstreams of a node's speculations (live or closed) that were guessed: their guesses are scored
 * by those, not again. An upstream a speculation took from the stream's settled output (`st`,
 * M8) was not guessed by it: the WAIT's guess of that upstream is the class's prediction and is
 * scored from the shadow (M5), while the speculation's outcome for it carries no evidence.
 */
function launchedUps(n: NodeState): Set<string> {
  const ups = new Set<string>();
  const add = (cls: string, st: Readonly<Record<string, number>> | undefined) => {
    for (const p of parseClasses(cls)) if (st?.[p.up] !== 1) ups.add(p.up);
  };
  if (n.spec !== undefined) add(n.spec.cls, n.spec.st);
  for (const c of Object.values(n.closed)) add(c.cls, c.st);
  return ups;
}

async function outcomesOfShadow(s: RunSnapshot, nodeId: string, n: NodeState, nowMs: number): Promise<Pending[]> {
  const sh = n.shadow;
  if (sh === undefined) return [];
  const out: Pending[] = [];
  const { tenant, runId } = s.header;
  const launched = launchedUps(n);
  for (const p of parseClasses(sh.cls)) {
    if (launched.has(p.up)) continue;
    const matched = await scoreGuess(s, nodeId, p.up, sh.assumed[p.up]);
    if (matched === undefined) continue;
    out.push({
      nodeId,
      outcome: {
        outcomeId: `${runId}:shadow:${nodeId}:${p.up}`,
        decisionId: sh.d,
        tenant,
        workflow: s.workflow.name,
        runId,
        edgeClass: p.classId,
        kind: matched ? 'shadow_hit' : 'shadow_miss',
        ...(sh.r === undefined ? {} : { waitReason: sh.r }),
        wasteUsd: 0,
        secondsSaved: 0,
        fencingViolation: false,
        atMs: Math.round(nowMs),
      },
    });
  }
  return out;
}

/**
 * M10: the budget settlement of a paid guess, once it is due: undefined while the guess may still
 * be used or still bills (not finished; its speculation live; its upstream still running and
 * nothing launched on it). A bought guess is sunk: its billed cost is booked as spent whether its
 * speculation hit, missed or was cancelled, or it was never used (issue 9 item 5).
 */
export function guessSettlement(s: RunSnapshot, nodeId: string, up: string): { attemptId: string; reservedNano: number; wasteNano: number } | undefined {
  const attemptId = guessAttemptId(nodeId, up);
  const g = s.attempts.get(attemptId);
  const n = s.nodes.get(nodeId);
  if (g?.reservedNanoUsd === undefined || n === undefined) return undefined;
  // Final usage: finished, or fenced before it ever started (startAttempt never starts it then).
  const final = g.finishedAtMs !== undefined || ((g.status === 'cancelled' || g.status === 'superseded') && g.startedAtMs === undefined);
  if (!final) return undefined;
  const out = { attemptId, reservedNano: g.reservedNanoUsd };
  const usedBy = (a: string): boolean => g.output !== undefined && s.attempts.get(a)?.assumed[up] === g.output;
  if (n.spec !== undefined && usedBy(n.spec.a)) return undefined;
  for (const a of Object.keys(n.closed)) {
    if (usedBy(a)) return { ...out, wasteNano: g.costNanoUsd };
  }
  // Not used (yet): final once the upstream's real output is known or the run has ended; a
  // speculation on it is refused from then on (createSpecAttempt), so the snapshot has them all.
  if (s.header.status === 'running' && s.nodes.get(up)?.state === 'running') return undefined;
  return { ...out, wasteNano: g.costNanoUsd };
}

async function settleGuesses(deps: OutcomeDeps, s: RunSnapshot): Promise<void> {
  for (const [nodeId, edges] of s.graph.incoming) {
    for (const e of edges) {
      if (!isLlmPredictor(e)) continue;
      const due = guessSettlement(s, nodeId, e.from);
      if (due === undefined) continue;
      // A running total: a try of the guess billed after this settlement is booked on top.
      await settleBudget(deps.redis, deps.ks, { tenant: s.header.tenant, runId: s.header.runId, settlementId: `${s.header.runId}:${due.attemptId}`, reservedNanoUsd: due.reservedNano, wasteNanoUsd: due.wasteNano, runningTotal: true });
    }
  }
}

/** The outcomes of a node that are due now (recorded or not): closed speculations and scored guesses. */
export async function dueOutcomes(s: RunSnapshot, nodeId: string, n: NodeState, nowMs: number): Promise<Outcome[]> {
  return [...(await outcomesOfClosed(s, nodeId, n, nowMs)), ...(await outcomesOfShadow(s, nodeId, n, nowMs))].map((p) => p.outcome);
}

/** Publishes, settles and records every outcome of the run that is due and not yet recorded. */
export async function settleOutcomes(deps: OutcomeDeps, s: RunSnapshot, nowMs: number): Promise<number> {
  let recorded = 0;
  await settleGuesses(deps, s);
  for (const [nodeId, n] of s.nodes) {
    for (const outcome of await dueOutcomes(s, nodeId, n, nowMs)) {
      if (n.outs[outcome.outcomeId] === 1) continue;
      await deps.control.publishOutcome(outcome);
      // The reservation of the speculation is released once, with its realized waste.
      const attemptId = outcome.outcomeId.split(':')[1] ?? '';
      const closed = n.closed[attemptId];
      if (closed !== undefined) {
        const wasteNano = closed.kind === 'hit' ? 0 : (s.attempts.get(attemptId)?.costNanoUsd ?? 0);
        await settleBudget(deps.redis, deps.ks, {
          tenant: s.header.tenant,
          runId: s.header.runId,
          settlementId: `${s.header.runId}:${attemptId}`,
          reservedNanoUsd: closed.res,
          wasteNanoUsd: wasteNano,
          runningTotal: closed.kind !== 'hit',
        });
        // Remembered before the outcome is recorded, so that a try billed later is topped up below.
        if (closed.kind !== 'hit') await markWasteBooked(deps.redis, deps.ks, { tenant: s.header.tenant, runId: s.header.runId, nodeId, attemptId, wasteNanoUsd: wasteNano });
      }
      if (await recordOutcome(deps.redis, deps.ks, { tenant: s.header.tenant, runId: s.header.runId, nodeId, outcomeId: outcome.outcomeId, outcomeJson: JSON.stringify(outcome) })) {
        recorded++;
        deps.log.info({ outcome }, 'outcome');
        deps.metrics?.outcome(outcome);
        traceOutcome(deps.tracer, s.header, outcome);
      }
    }
    await topUpWaste(deps, s, nodeId, n);
  }
  return recorded;
}

/**
 * The waste of a miss (or cancel) is its attempt's billed cost, and a try can be billed after the
 * outcome was settled: a worker that was SIGSTOPped or cut off past its lock reports its try late
 * (finishAttempt bills every try once, fenced or not), after another try or the scheduler finished
 * the attempt. The tenant is then booked up to the new cost (a running total per settlement id,
 * so a repeat or a concurrent scheduler with an older read books nothing twice). Found by the
 * long chaos campaign (issue 11): the tenant's spent waste was 3,600 nano-USD short of its misses'.
 */
async function topUpWaste(deps: OutcomeDeps, s: RunSnapshot, nodeId: string, n: NodeState): Promise<void> {
  const { tenant, runId } = s.header;
  for (const [attemptId, c] of Object.entries(n.closed)) {
    // `w` is written only once the outcome settled with a running total (absent: not settled
    // yet, or settled before running totals existed).
    if (c.kind === 'hit' || c.w === undefined) continue;
    const a = s.attempts.get(attemptId);
    if (a === undefined || a.finishedAtMs === undefined || a.costNanoUsd <= c.w) continue;
    await settleBudget(deps.redis, deps.ks, { tenant, runId, settlementId: `${runId}:${attemptId}`, reservedNanoUsd: c.res, wasteNanoUsd: a.costNanoUsd, runningTotal: true });
    await markWasteBooked(deps.redis, deps.ks, { tenant, runId, nodeId, attemptId, wasteNanoUsd: a.costNanoUsd });
    deps.log.info({ tenant, runId, attemptId, bookedNanoUsd: c.w, costNanoUsd: a.costNanoUsd }, 'late-billed waste booked');
  }
}
