/**
 * The run engine (M1, M6, M8): advances a run to its next state. `reconcile` is level-triggered
 * and idempotent: it reads the run, then completes nodes whose authoritative attempt finished,
 * matches finished upstreams against every speculation that assumed them (hit: confirm and, once
 * complete, release staged effects; miss: cancel and discard), launches nodes whose upstreams are
 * all done, makes the runtime decision for nodes whose pending upstreams are all running, and
 * settles outcomes. Every write is an atomic script guarded by epochs and claims, so any number
 * of schedulers may reconcile the same run at once: a lost race is a no-op, and each process
 * re-reads and repeats until it makes no progress.
 */
import {
  type CancelMessage,
  type Clock,
  type Logger,
  edgeClassId,
  matchOutput,
  type PriceTable,
  type WorkflowNode,
} from '@gambit/shared';
import {
  cancelGuess,
  cancelRun,
  compactRun,
  completeNode,
  confirmSpeculation,
  type ConfirmResult,
  controlKeys,
  discardSpeculation,
  encodeAttempt,
  expireRun,
  type FairDispatcher,
  finishRun,
  type KeySpace,
  launchNode,
  type RedisLike,
  settleEndedRun,
  settleRunSpend,
  setSpendBooked,
  bookLateRunSpend,
  tenantKeys,
  trimSpendHold,
} from '@gambit/shared/redis';
import type { Metrics } from '@gambit/shared/telemetry';
import type { Tracer } from '@opentelemetry/api';
import {
  type PredictorSet,
  recordDownstreamTokens,
  recordUpstreamOutput,
  requestHash,
} from '../predictors/index.js';
import { worstCaseNanoUsd } from '../budget.js';
import type { RetentionSource } from '../retention.js';
import type { TenantStore } from '../tenants.js';
import { guessAttemptId, isLlmPredictor } from '../predictors/llm.js';
import type { SpeculationControl } from './control.js';
import { decidable, transientClaim } from './decider.js';
import { type DecisionEffect, Decisions } from './decisions.js';
import { attemptIdFor, jobIdFor, planLaunch, renderOp } from './jobs.js';
import type { Outbox } from './outbox.js';
import { dueOutcomes, settleOutcomes } from './outcomes.js';
import type { OperationEstimateCache } from './op-estimates.js';
import { Redecider } from './redecide.js';
import { holdLaunchSpend, releaseLaunchSpend, type SpendCapDeps } from './spend.js';
import { type RunEndEvent, runEnded, runEndedById, traceLaunch } from './tracing.js';
import { expectedDurationMs } from './estimates.js';
import { loadRun, outputsOf, readyAtMs, type RunSnapshot } from './run-view.js';

export interface EngineDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly outbox: Outbox;
  /**
   * Issue 10 item 4: the fair dispatcher the outbox enqueues into (a cancelled queued speculation
   * is taken off its ready list, or out of its shard's BullMQ queue).
   */
  readonly fair: FairDispatcher;
  readonly priceTable: PriceTable;
  readonly predictors: PredictorSet;
  readonly control: SpeculationControl;
  readonly tenants: TenantStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tracer?: Tracer;
  readonly metrics?: Metrics;
  /**
   * Retention (issue 10 item 9, issue 13 item 3): per tenant, how long an ended run's keys live,
   * whether its compact record keeps outputs, and how many ended runs are kept.
   */
  readonly retention: RetentionSource;
  /**
   * Issue 11 D1: a fenced attempt of an ended run whose worker has not billed it this long after
   * the run ended (and after it started) is taken for lost and finished by the scheduler.
   */
  readonly lostAttemptGraceMs?: number;
  /** Told of every run this process ended (the run-end webhook, webhooks.ts). */
  readonly onRunEnd?: (e: RunEndEvent) => void;
  /**
   * The run-end webhook's safety net (webhooks.ts `runEnded`): called by the ended pass for a run
   * not yet marked `endNotice`, before it leaves the active index, so an end whose `onRunEnd`
   * died with its process is still delivered.
   */
  readonly ensureRunEndNotice?: (e: { tenant: string; runId: string; status: string; endMs: number }) => Promise<void>;
  /** M4: learned operation-class durations, used by ΔT (op-estimates.ts). */
  readonly opEstimates?: OperationEstimateCache;
  /** Issue 10 item 3: the tenants' limits (the spend cap checked at every launch, spend.ts). */
  readonly limits?: SpendCapDeps['limits'];
}

const DEFAULT_LOST_ATTEMPT_GRACE_MS = 5_000;

/** The error settleEndedRun-3.lua gives an attempt it took for lost (its worker never reported). */
const LOST_ATTEMPT_ERROR = 'settled by the scheduler: its worker never reported (lost)';

const MAX_ROUNDS = 50;

/** How long after this process folded a run the run's next event is known to need no pass. */
const FOLDED_SKIP_MS = 5_000;

/**
 * A reconcile in flight for one run in this process (see RunEngine.reconcile). `reads`: reads of
 * the run it has sent; `readsBeforeEvent`: how many it had sent when the last event arrived
 * that asked for a pass more (`again`).
 */
interface Inflight {
  again: boolean;
  reads: number;
  readsBeforeEvent: number;
  done: Promise<void>;
}

/** Step 5's sweeps over the nodes on one snapshot (a decision enabling another: a cascade). */
const MAX_DECISION_SWEEPS = 4;

/**
 * What one pass learns as it goes (issue 13 item 1): whether it changed anything the snapshot
 * does not show, or lost a race (the snapshot is then behind Redis), so the run must be re-read.
 */
interface Pass {
  reread: boolean;
  /**
   * Spend-cap trims of attempts completed in this pass not yet written: the next launch's hold
   * carries them (one script call for both, holdSpend-1.lua), or `flushTrims` writes them.
   */
  trims: Array<{ attemptId: string; costNanoUsd: number }>;
}

export class RunEngine {
  private readonly decisions: Decisions;
  private readonly redecider: Redecider;

  constructor(private readonly deps: EngineDeps) {
    this.decisions = new Decisions(deps);
    this.redecider = new Redecider(deps);
    // A fifth of the stale period (main.ts passes RECOVERY_STALE_MS as lostAttemptGraceMs).
    this.bumpEveryMs = Math.min(1_000, (deps.lostAttemptGraceMs ?? DEFAULT_LOST_ATTEMPT_GRACE_MS) / 5);
  }

  /**
   * Reconciles in flight in this process, by run (issue 13): one at a time per run. An event for
   * a run whose reconcile is already running only asks for one more pass after it (`again`), and
   * its caller waits for that pass, so events arriving together are coalesced into one re-read
   * while every event is still followed by a read that started after it arrived.
   */
  private readonly inflight = new Map<string, Inflight>();

  /**
   * When this process last moved each run's score in the active index (see bumpActive), so a
   * run that progresses many times a second costs one ZADD per `bumpEveryMs`, not one per pass.
   */
  private readonly bumpedAt = new Map<string, number>();
  private readonly bumpEveryMs: number;

  /**
   * Advances the run until this process can make no more progress. `created`: the snapshot of a
   * run this process has just written (runs.ts, newRunSnapshot), used for the first pass instead
   * of reading it back (ignored when a reconcile of the run is already in flight).
   */
  reconcile(tenant: string, runId: string, created?: RunSnapshot): Promise<void> {
    const key = `${tenant}\u0000${runId}`;
    const current = this.inflight.get(key);
    if (current !== undefined) {
      current.again = true;
      current.readsBeforeEvent = current.reads;
      return current.done;
    }
    // Issue 13 item 1: the first event for a run after this process folded it (a late report of
    // one of its attempts, an event queued behind others) finds nothing to do: a folded run's
    // pass only takes it out of the active index, which the fold did. Once per fold: a second
    // event reads the run as usual.
    // (Within FOLDED_SKIP_MS of the fold: a run id used again after its record expired is read.)
    const foldedAt = this.folded.get(`${tenant}:${runId}`);
    if (foldedAt !== undefined) {
      this.folded.delete(`${tenant}:${runId}`);
      const age = this.deps.clock.nowMs() - foldedAt;
      if (created === undefined && age >= 0 && age < FOLDED_SKIP_MS) return Promise.resolve();
    }
    const entry: Inflight = { again: false, reads: 0, readsBeforeEvent: 0, done: Promise.resolve() };
    // A run just created was indexed by its submit a moment ago.
    if (created !== undefined) this.noteBumped(`${tenant}:${runId}`, this.deps.clock.nowMs());
    // In the map before the first read is sent (read() counts it).
    this.inflight.set(key, entry);
    entry.done = (async () => {
      try {
        let first = created;
        do {
          entry.again = false;
          await this.reconcileOnce(tenant, runId, first);
          first = undefined;
          // Issue 13 item 1: an event that arrived before a read of this reconcile was sent is
          // in that read (its change was written before the event was added), and the pass on
          // it went as far as it could: no pass more for it.
        } while (entry.again && entry.reads <= entry.readsBeforeEvent);
      } finally {
        this.inflight.delete(key);
      }
    })();
    return entry.done;
  }

  private async reconcileOnce(tenant: string, runId: string, first?: RunSnapshot): Promise<void> {
    let bumped = false;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const s = round === 0 && first !== undefined ? first : await this.read(tenant, runId);
      if (s === undefined) return;
      const r = await this.step(s);
      if (r === 'none') return;
      // The active index's score says "progressed recently" (recovery sweep): once per
      // reconcile is enough, and never once the run ended (its next pass removes it).
      if (r !== 'ended' && !bumped) {
        await this.bumpActive(tenant, runId);
        bumped = true;
      }
      // `current`: the pass wrote only what it also applied to the snapshot, and every step after
      // each such write saw it (completing a node, then launching what it enabled in the same
      // pass), so a re-read would find nothing more to do. Events that arrive meanwhile still get
      // their own read (`again` in reconcile), and a lost race always re-reads.
      if (r === 'current') return;
    }
  }

  /**
   * Reads the run; the read deletes the outbox intents this process enqueued for it since its
   * last read (Outbox `deferDelete`, issue 13 item 1: no command of their own).
   */
  private async read(tenant: string, runId: string): Promise<RunSnapshot | undefined> {
    const entry = this.inflight.get(`${tenant}\u0000${runId}`);
    if (entry !== undefined) entry.reads++;
    const sent = this.deps.outbox.takeDeferred(tenant, runId);
    try {
      return await loadRun(this.deps.redis, this.deps.ks, tenant, runId, sent);
    } catch (err) {
      if (sent !== undefined) this.deps.outbox.restoreDeferred(tenant, runId, sent);
      throw err;
    }
  }

  /**
   * The run's score in the active index says "progressed recently": the recovery sweep kicks a
   * run whose score is older than RECOVERY_STALE_MS. Moved at most once per `bumpEveryMs` (a
   * fifth of that period, at most 1 s) by this process, so the score lags its last progress by
   * less than that; the sweep's kick of a run that progressed is only one more idempotent pass.
   */
  private async bumpActive(tenant: string, runId: string): Promise<void> {
    const member = `${tenant}:${runId}`;
    const now = this.deps.clock.nowMs();
    const last = this.bumpedAt.get(member);
    if (last !== undefined && now - last >= 0 && now - last < this.bumpEveryMs) return;
    await this.deps.redis.zadd(controlKeys(this.deps.ks).active, now, member);
    this.noteBumped(member, now);
  }

  /**
   * Runs this process folded into their compact record (or found folded) and took out of the
   * active index, `T:R` -> when: a fold is final, so the next event of such a run within
   * FOLDED_SKIP_MS needs no pass (see reconcile). Bounded; an entry is used once.
   */
  private readonly folded = new Map<string, number>();

  private noteFolded(member: string): void {
    if (this.folded.size >= 10_000) this.folded.clear();
    this.folded.set(member, this.deps.clock.nowMs());
  }

  private noteBumped(member: string, atMs: number): void {
    if (this.bumpedAt.size >= 10_000) this.bumpedAt.clear();
    this.bumpedAt.set(member, atMs);
  }

  /**
   * One pass over a snapshot: what it changed. `progressed` and `ended`: the caller re-reads;
   * `current`: every change is in the snapshot and was seen by the steps after it (see Pass).
   */
  private async step(s: RunSnapshot): Promise<'none' | 'progressed' | 'current' | 'ended'> {
    const now = this.deps.clock.nowMs();
    const { tenant, runId } = s.header;
    if (s.header.status !== 'running') {
      // Folded already (issue 13 item 3): everything was settled before; nothing is left to do.
      if (s.compact !== undefined) {
        await this.deps.redis.zrem(controlKeys(this.deps.ks).active, `${tenant}:${runId}`);
        this.noteFolded(`${tenant}:${runId}`);
        return 'none';
      }
      // Issue 11 D1, D5: an ended run discards its outbox and settles every attempt it ever
      // started (fenced, and finished once its worker has billed it or is taken for lost).
      // The snapshot says whether anything is left (most ended passes: nothing): only then the script.
      const open = s.intents === undefined || s.intents > 0 || [...s.attempts.values()].some((a) => a.status === 'queued' || a.status === 'running' || ((a.status === 'cancelled' || a.status === 'superseded') && a.finishedAtMs === undefined));
      const r = open ? await settleEndedRun(this.deps.redis, this.deps.ks, { tenant, runId, nowMs: now, graceMs: this.deps.lostAttemptGraceMs ?? DEFAULT_LOST_ATTEMPT_GRACE_MS }) : undefined;
      for (const attemptId of r?.fencedRunning ?? []) await this.broadcastCancel({ tenant, runId, attemptId, reason: `run ${s.header.status}` });
      if (r !== undefined && r.intentsDiscarded > 0) this.deps.log.info({ tenant, runId, intents: r.intentsDiscarded }, 'outbox of an ended run discarded');
      // What it finished has outcomes due now: re-read first.
      if (r !== undefined && r.changed > 0) return 'ended';
      await settleOutcomes(this.deps, s, now);
      // The run leaves the active index only once nothing is left to settle; until then the
      // recovery sweep kicks it again after RECOVERY_STALE_MS.
      if (r !== undefined && r.waiting > 0) {
        await this.deps.redis.zadd(controlKeys(this.deps.ks).active, now, `${tenant}:${runId}`);
        return 'none';
      }
      // Issue 10 item 3: nothing of the run can bill any more: book its settled cost into the
      // tenant's spend ledger and release its spend-cap holds, once per run, then record on the
      // run what was booked (`spendBooked`). The hold record alone is not marker enough: a
      // scheduler launching on a stale snapshot holds (then releases) under the run after it
      // settled, and an ended pass in that window would book it again. A try billed after the
      // settlement (a cancelled attempt's worker reporting late) raises the run's cost above
      // `spendBooked`: the difference is booked then (its event brings the run here again).
      let costNanoUsd = 0;
      for (const a of s.attempts.values()) costNanoUsd += a.costNanoUsd;
      // (`spendBooked` comes with the snapshot: the run hash is read whole.)
      const booked = s.header.spendBookedNanoUsd;
      if (booked === undefined) {
        await settleRunSpend(this.deps.redis, this.deps.ks, { tenant, runId, costNanoUsd });
        await setSpendBooked(this.deps.redis, this.deps.ks, { tenant, runId, expected: undefined, to: costNanoUsd });
      } else if (costNanoUsd > booked) {
        // Booked first, then recorded: the booking is once per run and total (settleRunSpend-2
        // `late` keeps the most booked), so a call re-sent after a lost reply, a second scheduler,
        // or a crash before the record books nothing twice; the record only spares the call.
        await bookLateRunSpend(this.deps.redis, this.deps.ks, { tenant, runId, costNanoUsd, bookedNanoUsd: booked, nowMs: now });
        await setSpendBooked(this.deps.redis, this.deps.ks, { tenant, runId, expected: booked, to: costNanoUsd });
      }
      // Before it leaves the index (after which nothing visits it again): its end notice.
      if (!s.header.endNotice && this.deps.ensureRunEndNotice !== undefined)
        await this.deps.ensureRunEndNotice({ tenant, runId, status: s.header.status, endMs: s.header.finishedAtMs ?? now });
      // Issue 13 item 3: settled: fold the run into its compact record (the script re-checks
      // that every attempt is settled and every outcome found due here is recorded). An attempt
      // waiting for an operator (issue 11 D2) keeps the run as it is until it is resolved.
      // An attempt taken for lost whose worker may still bill it late (it was only stopped) puts
      // the fold off for ten grace periods after the end, so such a bill is still booked: the run
      // leaves the active index (it is settled) and the recovery sweep kicks it then (`fold`).
      const graceMs = this.deps.lostAttemptGraceMs ?? DEFAULT_LOST_ATTEMPT_GRACE_MS;
      const endedAt = s.header.finishedAtMs ?? now;
      const member = `${tenant}:${runId}`;
      if ([...s.attempts.values()].some((a) => a.error === LOST_ATTEMPT_ERROR) && now - endedAt < 10 * graceMs) {
        await this.deps.redis.zadd(controlKeys(this.deps.ks).fold, endedAt + 10 * graceMs, member);
        await this.deps.redis.zrem(controlKeys(this.deps.ks).active, member);
        return 'none';
      }
      const attention = [...s.attempts.values()].some((a) => a.status === 'needs_attention');
      const folded = attention ? true : await this.compact(s, now);
      // Not folded because something changed since the snapshot: the recovery sweep comes back.
      if (folded) {
        await this.deps.redis.zrem(controlKeys(this.deps.ks).active, member);
        if (!attention) this.noteFolded(member);
      } else await this.deps.redis.zadd(controlKeys(this.deps.ks).active, now, member);
      return 'none';
    }
    let progressed = false;
    const pass: Pass = { reread: false, trims: [] };

    // 1. Nodes whose authoritative attempt has finished.
    for (const [id, n] of s.nodes) {
      if (n.state !== 'running' || n.auth === undefined) continue;
      const a = s.attempts.get(n.auth);
      if (a?.status !== 'succeeded' && a?.status !== 'failed') continue;
      const r = await completeNode(this.deps.redis, this.deps.ks, { tenant, runId, nodeId: id, attemptId: n.auth, nowMs: now });
      if (r.code === 'completed') {
        progressed = true;
        // Issue 10 item 3: the attempt's cost is final; its spend-cap hold comes down to it
        // (with the next launch's hold in this pass, or by flushTrims after step 4).
        pass.trims.push({ attemptId: n.auth, costNanoUsd: a.costNanoUsd });
        // The snapshot goes on with what this script wrote (the next pass re-reads anyway): the
        // downstream launch then happens in this pass, one Redis read earlier.
        s.nodes.set(id, { ...n, state: r.state, ...(r.state === 'succeeded' ? { output: a.output ?? '', source: 'authoritative' as const } : { error: a.error ?? 'failed' }), finishedAtMs: a.finishedAtMs ?? now });
        if (r.state === 'succeeded') await this.learn(s, id, n.auth, a.output ?? '');
      } else if (r.code === 'duplicate') {
        // Completed already: by another scheduler, or by this very call executed twice (ioredis
        // re-sends a call whose reply was lost). Either way the run moved on: re-read and go on
        // (stopping here left it to the recovery sweep's kick), and the attempt's hold comes down
        // to its cost (a trim is idempotent). Its learning is the completing call's.
        progressed = true;
        pass.reread = true;
        pass.trims.push({ attemptId: n.auth, costNanoUsd: a.costNanoUsd });
      } else pass.reread = true;
    }

    // 1b. M10: a paid guess whose upstream has ended can no longer be used: cancel it.
    if (await this.cancelLateGuesses(s)) pass.reread = true;

    // 2. Speculations: match finished upstreams, complete confirmed ones, drop dead ones.
    for (const [id, n] of s.nodes) {
      if (n.spec !== undefined && (await this.checkSpeculation(s, id, pass))) progressed = true;
    }

    // 2b. M8 SPECULATE→cancel: live speculations re-decided with the current α, λ, posteriors, budget.
    if (await this.redecider.run(s, (snap, nodeId, attemptId) => this.discard(snap, nodeId, attemptId, 'cancelled', ''))) {
      progressed = true;
      pass.reread = true;
    }

    // 3. A node that failed for good ends the run.
    const failed = [...s.nodes.entries()].find(([, n]) => n.state === 'failed');
    if (failed !== undefined) {
      await this.flushTrims(s, pass);
      await this.end(tenant, runId, 'failed', `node ${failed[0]} failed: ${failed[1].error ?? ''}`);
      return 'ended';
    }

    // 4. Launch every node whose upstreams have all succeeded (and no speculation stands).
    for (const [id, n] of s.nodes) {
      if (n.state !== 'pending' || n.spec !== undefined) continue;
      const ups = s.graph.incoming.get(id) ?? [];
      if (!ups.every((e) => s.nodes.get(e.from)?.state === 'succeeded')) continue;
      if (await this.launch(s, id, pass)) progressed = true;
    }
    // A run whose every node succeeded is finished below: its trims are not written (issue 13
    // item 1), since the end's settleRunSpend releases all of the run's holds at once.
    const finishing = [...s.nodes.values()].every((n) => n.state === 'succeeded');
    if (!finishing) await this.flushTrims(s, pass);

    // 5. Runtime decisions (M1, M4): nodes whose pending upstreams are all running. A decision
    // recorded or a speculation launched is applied to the snapshot (DecisionEffect), and the
    // nodes are gone over again on it while that makes progress (a cascade on a speculation
    // just launched), as a re-read of the run would: issue 13 item 1, no re-read per decision.
    if (s.header.speculation) {
      for (let sweep = 0; sweep < MAX_DECISION_SWEEPS; sweep++) {
        let decided = false;
        for (const [id, n] of s.nodes) {
          if (n.state !== 'pending' || n.spec !== undefined || n.claims.runtime === 1) continue;
          const ups = s.graph.incoming.get(id) ?? [];
          if (ups.length === 0) continue;
          const def = s.graph.byId.get(id);
          if (def === undefined) continue;
          if (!decidable(s, id)) continue;
          // A transient WAIT already recorded for this set of pending upstreams (see decider.ts).
          if (n.claims[transientClaim(s, id)] === 1) continue;
          const fx: DecisionEffect = { stale: false };
          if (await this.decideAndAct(s, def, 'runtime', undefined, fx)) {
            progressed = true;
            decided = true;
            if (fx.stale) pass.reread = true;
          }
        }
        if (!decided || pass.reread) break;
        // The last sweep's progress is left to a re-read, as before.
        if (sweep === MAX_DECISION_SWEEPS - 1) pass.reread = true;
      }
    }

    // 6. Outcomes due (misses whose cancelled attempt has been billed, hits, shadow scores).
    await settleOutcomes(this.deps, s, now);

    // 7. Done?
    if (finishing) {
      if (await finishRun(this.deps.redis, this.deps.ks, { tenant, runId, nowMs: now })) {
        this.deps.log.info({ tenant, runId, durationMs: now - s.header.createdAtMs }, 'run succeeded');
        runEnded(this.deps, s, 'succeeded', now);
        await this.expire(tenant, runId);
        return 'ended';
      }
      // Not finished by this pass (the run ended otherwise meanwhile): the trims as usual.
      await this.flushTrims(s, pass);
    }
    if (!progressed) return 'none';
    return pass.reread ? 'progressed' : 'current';
  }

  /** Writes the spend-cap trims of the pass that no launch carried (see Pass). */
  private async flushTrims(s: RunSnapshot, pass: Pass): Promise<void> {
    const { tenant, runId } = s.header;
    for (const t of pass.trims.splice(0)) await trimSpendHold(this.deps.redis, this.deps.ks, { tenant, runId, attemptId: t.attemptId, costNanoUsd: t.costNanoUsd });
  }

  /** Learns from a node's real output: predictor memory of its out-edges, N_out of its in-edges. */
  private async learn(s: RunSnapshot, nodeId: string, attemptId: string, output: string): Promise<void> {
    const def = s.graph.byId.get(nodeId);
    if (def === undefined) return;
    // Independent writes, sent together (one round trip) rather than one after another.
    const writes: Array<Promise<void>> = [];
    const warn = (err: unknown) => this.deps.log.warn({ err: String(err), nodeId }, 'could not record predictor history');
    try {
      const outgoing = s.graph.outgoing.get(nodeId) ?? [];
      if (outgoing.length > 0) {
        const op = renderOp(def, { runId: s.header.runId, inputs: s.header.inputs, outputs: outputsOf(s) });
        const h = requestHash(op);
        for (const e of outgoing) writes.push(recordUpstreamOutput(this.deps.redis, this.deps.ks, classOf(s, e.from, e.to), e, h, output).catch(warn));
      }
    } catch (err) {
      warn(err);
    }
    const usage = s.attempts.get(attemptId)?.usage;
    if (def.kind === 'llm' && usage !== undefined)
      for (const e of s.graph.incoming.get(nodeId) ?? [])
        writes.push(recordDownstreamTokens(this.deps.redis, this.deps.ks, classOf(s, e.from, e.to), usage.outputTokens));
    const failed = (await Promise.allSettled(writes)).find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Launches a node authoritatively on its upstreams' real outputs. A launch made is applied to
   * the snapshot; anything else that changed the run (ended it, lost the epoch race) sets `pass.reread`.
   */
  private async launch(s: RunSnapshot, nodeId: string, pass: Pass): Promise<boolean> {
    const def = s.graph.byId.get(nodeId);
    const n = s.nodes.get(nodeId);
    if (def === undefined || n === undefined) return false;
    const { tenant, runId } = s.header;
    const now = this.deps.clock.nowMs();
    let op: ReturnType<typeof renderOp>;
    try {
      op = renderOp(def, { runId, inputs: s.header.inputs, outputs: outputsOf(s) });
    } catch (err) {
      await this.end(tenant, runId, 'failed', `node ${nodeId} cannot be rendered: ${String(err)}`);
      pass.reread = true;
      return true;
    }
    const epoch = n.epoch + 1;
    // Issue 10 item 3: the launch's worst case is held against the tenant's spend cap first; a
    // node the cap cannot cover fails the run (it would never run in this period otherwise).
    const attemptId = attemptIdFor(nodeId, epoch, 'authoritative');
    const trims = pass.trims.splice(0);
    const hold = await holdLaunchSpend(this.deps, { tenant, runId, attemptId, amountNanoUsd: worstCaseNanoUsd(this.deps.priceTable, op) ?? 0, nowMs: now, what: `node ${nodeId}`, trims });
    if (!hold.ok) {
      await this.end(tenant, runId, 'failed', `node ${nodeId} not launched: ${hold.message}`);
      pass.reread = true;
      return true;
    }
    const carrier = traceLaunch(this.deps.tracer, s.header, nodeId, attemptId);
    const plan = planLaunch({
      tenant,
      runId,
      workflow: s.workflow.name,
      node: def,
      epoch,
      kind: 'authoritative',
      op,
      assumed: {},
      streamPartials: s.header.speculation && (s.graph.outgoing.get(nodeId) ?? []).some((e) => e.speculate),
      ...(carrier === undefined ? {} : { trace: carrier }),
      ...(s.header.opTimeoutMs === undefined ? {} : { defaultTimeoutMs: s.header.opTimeoutMs }),
      nowMs: now,
    });
    const r = await launchNode(this.deps.redis, this.deps.ks, {
      tenant,
      runId,
      nodeId,
      expectedEpoch: n.epoch,
      attemptId: plan.attemptId,
      attemptJson: encodeAttempt(plan.attempt),
      jobId: plan.intent.jobId,
      // The hold key makes the intent this call's own: a call ioredis re-sends after a lost reply
      // finds it in the outbox and is answered as launched (launchNode-4.lua).
      intentJson: JSON.stringify({ ...plan.intent, k: hold.key }),
      nowMs: now,
    });
    if (!r.ok) {
      await releaseLaunchSpend(this.deps, { tenant, runId, key: hold.key });
      pass.reread = true;
      return false;
    }
    s.nodes.set(nodeId, { ...n, state: 'running', epoch: r.epoch, auth: plan.attemptId, startedAtMs: now });
    s.attempts.set(plan.attemptId, plan.attempt);
    await this.deps.outbox.send(tenant, runId, plan.intent, { deferDelete: true });
    this.deps.log.debug({ tenant, runId, nodeId, attemptId: plan.attemptId }, 'node launched');
    return true;
  }

  /** Makes, records and acts on one decision for `d` (M4); see decisions.ts. */
  decideAndAct(s: RunSnapshot, d: WorkflowNode, phase: 'runtime' | 'stream', settled?: ReadonlyMap<string, string>, fx?: DecisionEffect): Promise<boolean> {
    return this.decisions.decideAndAct(s, d, phase, settled, fx);
  }

  /**
   * Matches a node's speculation against its finished upstreams (M7) and acts on the verdicts. A
   * confirmation is applied to the snapshot (the script returns the node it wrote); a discard
   * sets `pass.reread`.
   */
  private async checkSpeculation(s: RunSnapshot, nodeId: string, pass: Pass): Promise<boolean> {
    const n = s.nodes.get(nodeId);
    const spec = n?.spec;
    if (n === undefined || spec === undefined) return false;
    const { tenant, runId } = s.header;
    const now = this.deps.clock.nowMs();
    const ref = { tenant, runId, nodeId, attemptId: spec.a, nowMs: now };
    const discard = (kind: 'miss' | 'cancelled', edge: string, onlyIfQueued = false): Promise<boolean> => {
      pass.reread = true;
      return this.discard(s, nodeId, spec.a, kind, edge, onlyIfQueued);
    };
    const confirm = async (upstreamId?: string): Promise<boolean> =>
      this.afterConfirm(s, nodeId, spec.a, await confirmSpeculation(this.deps.redis, this.deps.ks, upstreamId === undefined ? ref : { ...ref, upstreamId }), pass);
    // M8: a cascade whose source speculation was discarded (and did not become the upstream's
    // result) goes too, even if it was launched on a read from before the discard.
    for (const [up, srcAttempt] of Object.entries(spec.src ?? {})) {
      const u = s.nodes.get(up);
      const live = u?.spec?.a === srcAttempt || (u?.state === 'succeeded' && u.auth === srcAttempt);
      if (!live && spec.ok[up] !== 1) return discard('cancelled', up);
    }
    for (const [up, guess] of Object.entries(spec.assumed)) {
      if (spec.ok[up] === 1) continue;
      const u = s.nodes.get(up);
      if (u === undefined) continue;
      if (u.state === 'failed' || u.state === 'cancelled') return discard('cancelled', up);
      if (u.state !== 'succeeded' || u.output === undefined) continue;
      const edge = (s.graph.incoming.get(nodeId) ?? []).find((e) => e.from === up);
      const m = edge === undefined ? { matched: false } : await matchOutput(edge.match, guess, u.output);
      if (!m.matched) return discard('miss', up);
      return confirm(up);
    }
    // Every guess confirmed earlier: complete once the attempt is done; drop it if it failed.
    const a = s.attempts.get(spec.a);
    if (a?.status === 'failed' || a?.status === 'cancelled' || a?.status === 'superseded' || a === undefined)
      return spec.full === 1 ? confirm() : discard('cancelled', '');
    if (spec.full === 1 && a.status === 'succeeded') return confirm();
    if (spec.full === 1 && a.status === 'queued') {
      // Every guess was right but the attempt never got a speculative slot: waiting for it would
      // delay real work (M10), so the node runs for real now.
      return discard('cancelled', '', true);
    }
    if (spec.full === 1 && a.status === 'running') {
      // A confirmed attempt that overstays (its worker died and the job was lost) is given up.
      const def = s.graph.byId.get(nodeId);
      const ready = readyAtMs(s, nodeId);
      const patienceMs = Math.max(5_000, 3 * (def === undefined ? 0 : expectedDurationMs(def)));
      if (ready !== undefined && now - ready > patienceMs) return discard('cancelled', '');
    }
    return false;
  }

  private async afterConfirm(s: RunSnapshot, nodeId: string, attemptId: string, r: ConfirmResult, pass: Pass): Promise<boolean> {
    // The node as the script wrote it (a guess confirmed, or the node completed from the
    // speculation): the steps after this one see it without a re-read.
    if (r.code === 'partial' || r.code === 'waiting') s.nodes.set(nodeId, r.node);
    if (r.code === 'completed') {
      this.deps.log.info({ tenant: s.header.tenant, runId: s.header.runId, nodeId, attemptId }, 'speculation hit: node completed');
      // In place only when the snapshot already holds the finished attempt (the hit's outcome is
      // scored from it in this pass); an attempt that finished after the read: re-read instead.
      if (s.attempts.get(attemptId)?.status === 'succeeded') s.nodes.set(nodeId, r.node);
      else pass.reread = true;
      await this.learn(s, nodeId, attemptId, r.node.output ?? '');
      // A speculation that assumed this node's output may have been checked earlier in this pass.
      if ([...s.nodes.values()].some((m) => m.spec?.assumed[nodeId] !== undefined)) pass.reread = true;
      return true;
    }
    // The guesses were right but the speculative attempt ended without a result: run it for real.
    if (r.code === 'attempt_ended') {
      pass.reread = true;
      return this.discard(s, nodeId, attemptId, 'cancelled', '');
    }
    if (r.code === 'partial' || r.code === 'waiting') {
      // The check goes on with the node as written, as a re-read would: another finished
      // upstream to match, or a fully confirmed attempt that never got a slot (runs for real now).
      await this.checkSpeculation(s, nodeId, pass);
      return true;
    }
    // Not live: another scheduler moved it, or this very call completed the node and was executed
    // twice (ioredis re-sends a call whose reply was lost). Either way the run moved on: the pass
    // counts as progress, so it is re-read at once (stopping left it to the recovery sweep's kick).
    pass.reread = true;
    return true;
  }

  /** Discards a speculation (M6, M8): cancel broadcast if it may be running, its queued job removed. */
  async discard(s: RunSnapshot, nodeId: string, attemptId: string, kind: 'miss' | 'cancelled', edge: string, onlyIfQueued = false): Promise<boolean> {
    const { tenant, runId } = s.header;
    const r = await discardSpeculation(this.deps.redis, this.deps.ks, { tenant, runId, nodeId, attemptId, kind, edge, nowMs: this.deps.clock.nowMs(), onlyIfQueued });
    if (!r.discarded) return false;
    this.deps.log.info({ tenant, runId, nodeId, attemptId, kind, edge, previousStatus: r.previousStatus }, 'speculation discarded');
    if (r.previousStatus === 'running') await this.broadcastCancel({ tenant, runId, attemptId, reason: `speculation ${kind}` });
    if (r.previousStatus === 'queued') await this.dropQueuedSpec(tenant, runId, attemptId);
    // M8: a cascade built on this speculation's result goes with it (the whole subtree).
    for (const e of s.graph.outgoing.get(nodeId) ?? []) {
      const child = s.nodes.get(e.to)?.spec;
      if (child?.cas === 1 && child.assumed[nodeId] !== undefined && child.ok[nodeId] !== 1) await this.discard(s, e.to, child.a, 'cancelled', nodeId);
    }
    return true;
  }

  /**
   * M10: cancels every paid guess still queued or running whose upstream is no longer running
   * (status + cancel broadcast, as misses), so only the tokens it consumed are billed. True when
   * it cancelled one (the snapshot does not show it).
   */
  private async cancelLateGuesses(s: RunSnapshot): Promise<boolean> {
    const { tenant, runId } = s.header;
    let cancelled = false;
    for (const [nodeId, edges] of s.graph.incoming) {
      for (const e of edges) {
        if (!isLlmPredictor(e) || s.nodes.get(e.from)?.state === 'running') continue;
        const attemptId = guessAttemptId(nodeId, e.from);
        const g = s.attempts.get(attemptId);
        if (g?.status !== 'queued' && g?.status !== 'running') continue;
        const r = await cancelGuess(this.deps.redis, this.deps.ks, { tenant, runId, upstreamId: e.from, attemptId, nowMs: this.deps.clock.nowMs() });
        if (!r.cancelled) continue;
        cancelled = true;
        this.deps.log.info({ tenant, runId, nodeId, attemptId, previousStatus: r.previousStatus }, 'late guess cancelled');
        // Whatever its status was, a worker may hold the job: broadcast, and drop a queued job.
        await this.broadcastCancel({ tenant, runId, attemptId, reason: 'guess not used' });
        if (r.previousStatus === 'queued') await this.dropQueuedSpec(tenant, runId, attemptId);
      }
    }
    return cancelled;
  }

  /**
   * A cancelled speculation that was still queued: off its tenant's ready list, or out of the
   * BullMQ queue (then its slot is released), so it never takes a slot. Best effort: a job that
   * is already running is stopped by the broadcast, and any leftover is fenced by startAttempt.
   */
  private async dropQueuedSpec(tenant: string, runId: string, attemptId: string): Promise<void> {
    const jobId = jobIdFor(tenant, runId, attemptId);
    if (await this.deps.fair.remove('spec', tenant, jobId).catch(() => false)) return;
    await this.deps.fair.removeQueued('spec', tenant, jobId).catch(() => false);
  }

  async broadcastCancel(msg: CancelMessage): Promise<void> {
    await this.deps.redis.publish(controlKeys(this.deps.ks).cancelChannel, JSON.stringify(msg));
  }

  /** Ends a running run (cancel or failure): everything unfinished is cancelled and fenced. */
  async end(tenant: string, runId: string, status: 'cancelled' | 'failed', reason: string): Promise<boolean> {
    const r = await cancelRun(this.deps.redis, this.deps.ks, { tenant, runId, status, reason, nowMs: this.deps.clock.nowMs() });
    for (const attemptId of r.runningAttempts) await this.broadcastCancel({ tenant, runId, attemptId, reason: `run ${status}` });
    if (r.ended) {
      this.deps.log.info({ tenant, runId, status, reason }, `run ${status}`);
      await runEndedById(this.deps, tenant, runId, status, this.deps.clock.nowMs(), reason);
      await this.expire(tenant, runId);
    }
    return r.ended;
  }

  /** Retention: an ended run's keys get the tenant's TTL (late writes, e.g. a cancelled attempt's usage, keep it). */
  private async expire(tenant: string, runId: string): Promise<void> {
    const { ttlMs } = await this.deps.retention.rules(tenant, this.deps.clock.nowMs());
    if (ttlMs === undefined) return;
    await expireRun(this.deps.redis, this.deps.ks, { tenant, runId, ttlMs });
  }

  /**
   * Issue 13 item 3: folds a settled ended run into its compact record. Returns false when the
   * fold did not happen because the run changed since the snapshot (a late bill, an outcome that
   * became due); true when it is folded (or was already, or is gone).
   */
  private async compact(s: RunSnapshot, now: number): Promise<boolean> {
    const { tenant, runId } = s.header;
    const due: Array<[string, string]> = [];
    for (const [nodeId, n] of s.nodes) for (const o of await dueOutcomes(s, nodeId, n, now)) due.push([nodeId, o.outcomeId]);
    const rules = await this.deps.retention.rules(tenant, now);
    const r = await compactRun(this.deps.redis, this.deps.ks, { tenant, runId, keepOutputs: rules.keepOutputs, dueOutcomes: due });
    // 'already': folded by another scheduler, or by this call executed twice (ioredis re-sends a
    // call whose reply was lost): indexing it as ended is idempotent, so it is indexed again.
    if (r === 'compacted' || r === 'already') {
      const dropped = await this.deps.retention.folded(tenant, runId, s.header.finishedAtMs ?? now, now);
      this.deps.log.debug({ tenant, runId, dropped }, 'ended run folded into its compact record');
      return true;
    }
    if (r === 'missing_or_running') {
      // Ended and gone: its record expired before it could be folded (retention shorter than
      // the fold's delay), so it never enters the `ended` index: its settlement markers go now.
      await this.deps.redis.del(tenantKeys(this.deps.ks, tenant).settled(runId));
      return true;
    }
    this.deps.log.info({ tenant, runId, reason: r }, 'ended run not folded yet: changed since it was read');
    return false;
  }
}

function classOf(s: RunSnapshot, from: string, to: string): string {
  return edgeClassId(s.header.tenant, s.workflow.name, from, to);
}
