/**
 * Acting on a decision (M4, M9, M10): makes the decision with the shared rule (decider.ts),
 * records it once per node and trigger, and acts on it: SPECULATE reserves the launch's price in
 * the tenant's budget, then launches the speculative attempt (decision, attempt and outbox
 * intent in one script); a budget refusal becomes the rule's `budget` WAIT; a shadow-stage
 * prediction is kept on the node to be scored when its upstreams finish.
 */
import { randomUUID } from 'node:crypto';
import { type DecisionRecord, resolveDial, usdToNano, type WorkflowNode } from '@gambit/shared';
import { closeReservation, createGuessAttempt, createSpecAttempt, encodeAttempt, encodeDecision, type LiveSpec, recordDecision, settleBudget } from '@gambit/shared/redis';
import { worstCaseNanoUsd } from '../budget.js';
import { guessAttemptId, guessClaim } from '../predictors/llm.js';
import { type DecisionResult, decideNode, type GuessToBuy, runtimeClaimFor, withBudgetRefused } from './decider.js';
import type { EngineDeps } from './engine.js';
import { attemptIdFor, planGuess, planLaunch, priorityFromEv, renderOp } from './jobs.js';
import { guessesToScore } from './outcomes.js';
import { outputsOf, type RunSnapshot } from './run-view.js';
import { releaseLaunchSpend, reserveAndHoldLaunch } from './spend.js';
import { traceDecision } from './tracing.js';

/**
 * Issue 13 item 1: what a decision wrote that its snapshot does not show. A recorded decision and
 * a speculative launch are applied to the snapshot as their scripts wrote them (the node's claim
 * and shadow; its epoch, claim and live speculation, and the attempt); anything else that made
 * progress (a paid guess bought) sets `stale`, and the caller reads the run again.
 */
export interface DecisionEffect {
  stale: boolean;
}

export class Decisions {
  constructor(private readonly deps: EngineDeps) {}

  /**
   * Makes and records one decision for `d` (M4) and acts on it: SPECULATE reserves the budget
   * (M10) and launches the speculative attempt; shadow-stage predictions are kept for scoring.
   * `fx`: told whether the snapshot shows what was written (see DecisionEffect).
   */
  async decideAndAct(s: RunSnapshot, d: WorkflowNode, phase: 'runtime' | 'stream', settled?: ReadonlyMap<string, string>, fx?: DecisionEffect): Promise<boolean> {
    const now = this.deps.clock.nowMs();
    const { tenant, runId } = s.header;
    const tenantCfg = await this.deps.tenants.get(tenant, now);
    const res = await decideNode(this.deps, s, d, { tenantCfg, phase, ...(settled === undefined ? {} : { settled }), nowMs: now });
    if (res === undefined) return false;
    const n = s.nodes.get(d.id);
    if (n === undefined) return false;
    if (res.buy !== undefined && phase === 'runtime') {
      if (fx !== undefined) fx.stale = true;
      return this.buyGuesses(s, d, res, res.buy);
    }
    if (res.record.action === 'SPECULATE') {
      const dial = resolveDial({ alpha: tenantCfg.alpha, lambdaUsdPerSec: tenantCfg.lambdaUsdPerSec }, { alpha: res.record.alpha, lambdaUsdPerSec: res.record.lambdaUsdPerSec });
      // The reservation is recorded as open (with the attempt id the launch would create) so the
      // recovery sweep can release it if this process dies before launching (docs/runtime.md).
      const attemptId = attemptIdFor(d.id, n.epoch + 1, 'speculative');
      const open = { id: `${runId}:${attemptId}:unused:${randomUUID()}`, runId, attemptId, atMs: now };
      // Issue 10 item 3: the reservation is the launch's worst case (its rendered prompt at the
      // input rate plus maxTokens at the output rate), not the expected C_spec, so that whatever
      // the workflow declares, settling to the actual cost never takes the tenant past its budget.
      const amountNanoUsd = this.reservationNanoUsd(s, d, res);
      // Issue 10 item 3: the same worst case is held against the tenant's spend cap (all spend);
      // a speculation the cap cannot cover is the rule's `budget` WAIT, like the budget's refusal.
      // Issue 13 item 1: the reservation and the hold are one script call, both or neither.
      const hold = await reserveAndHoldLaunch(this.deps, { tenant, runId, attemptId, amountNanoUsd, limitNanoUsd: tenantCfg.budgetNanoUsd, open });
      if (!hold.ok) return this.recordOnly(s, d.id, phase, withBudgetRefused(res, { dial }), res);
      const launched = await this.launchSpeculation(s, d, phase, res, amountNanoUsd, open.id, settled);
      if (launched) await closeReservation(this.deps.redis, this.deps.ks, { tenant, runId, id: open.id, amountNanoUsd });
      else {
        // Lost the race (another scheduler decided, or the upstream finished): release the reservation.
        await settleBudget(this.deps.redis, this.deps.ks, { tenant, runId, settlementId: open.id, reservedNanoUsd: amountNanoUsd, wasteNanoUsd: 0 });
        await releaseLaunchSpend(this.deps, { tenant, runId, key: hold.key });
      }
      return launched;
    }
    return this.recordOnly(s, d.id, phase, res.record, res, settled);
  }

  /**
   * M10 stage 1: whether the paid guesses are worth buying, priced into C_spec (their price is
   * `predictorUsd`). SPECULATE buys each (a speculative-queue job whose output is the guess);
   * a rule WAIT is recorded with reason `predictor` and buys nothing; any other gate is recorded
   * as the node's runtime decision. The launch itself is decided again when the guess arrives.
   */
  private async buyGuesses(s: RunSnapshot, d: WorkflowNode, res: DecisionResult, buy: readonly GuessToBuy[]): Promise<boolean> {
    const { tenant, runId } = s.header;
    const base = res.record;
    if (base.action === 'WAIT' && base.reason !== 'below_threshold') return this.recordOnly(s, d.id, 'runtime', base, { ...res, assumed: {} });
    let progressed = false;
    const now = this.deps.clock.nowMs();
    const tenantCfg = await this.deps.tenants.get(tenant, now);
    for (const g of buy) {
      const claim = guessClaim(g.up);
      const decisionId = `${runId}:${d.id}:${claim}`;
      if (base.action === 'WAIT') {
        const record: DecisionRecord = { ...base, reason: 'predictor', decisionId };
        if (await recordDecision(this.deps.redis, this.deps.ks, { tenant, runId, nodeId: d.id, claim, decisionJson: encodeDecision(record, s.header) })) {
          this.logDecision(record);
          progressed = true;
        }
        continue;
      }
      // M10: a paid guess is a launch: its price is reserved before it is created and enqueued,
      // and settled under `<run>:<attempt>` when it is used or not (outcomes.ts settleGuesses).
      // Issue 10 item 3: the guess's worst case (its prompt plus the predictor's maxTokens).
      const priceNano = Math.max(usdToNano(g.priceUsd), worstCaseNanoUsd(this.deps.priceTable, g.op) ?? 0);
      const attemptId = guessAttemptId(d.id, g.up);
      const open = { id: `${runId}:${attemptId}:unused:${randomUUID()}`, runId, attemptId, atMs: now };
      // Issue 10 item 3: and against the tenant's spend cap (a refusal is a `budget` WAIT too),
      // in the same script call (issue 13 item 1): both or neither.
      const hold = await reserveAndHoldLaunch(this.deps, { tenant, runId, attemptId, amountNanoUsd: priceNano, limitNanoUsd: tenantCfg.budgetNanoUsd, open });
      if (!hold.ok) {
        const dial = resolveDial({ alpha: tenantCfg.alpha, lambdaUsdPerSec: tenantCfg.lambdaUsdPerSec }, { alpha: base.alpha, lambdaUsdPerSec: base.lambdaUsdPerSec });
        return (await this.recordOnly(s, d.id, 'runtime', withBudgetRefused(res, { dial }), { ...res, assumed: {} })) || progressed;
      }
      const record: DecisionRecord = { ...base, decisionId };
      const plan = planGuess({ tenant, runId, workflow: s.workflow.name, nodeId: d.id, upstream: g.up, op: g.op, decisionId, priority: priorityFromEv(base.evUsd), reservedNanoUsd: priceNano, reservationId: open.id, ...(s.header.opTimeoutMs === undefined ? {} : { timeoutMs: s.header.opTimeoutMs }), nowMs: now });
      const ok = await createGuessAttempt(this.deps.redis, this.deps.ks, {
        tenant,
        runId,
        nodeId: d.id,
        upstreamId: g.up,
        claim,
        attemptId: plan.attemptId,
        attemptJson: encodeAttempt(plan.attempt),
        jobId: plan.intent.jobId,
        intentJson: JSON.stringify(plan.intent),
        decisionJson: encodeDecision(record, s.header),
      });
      if (!ok) {
        // Lost the race (claim taken, upstream ended): release this reservation. Its id is unique
        // because several losers of one claim each hold a reservation of their own.
        await settleBudget(this.deps.redis, this.deps.ks, { tenant, runId, settlementId: open.id, reservedNanoUsd: priceNano, wasteNanoUsd: 0 });
        await releaseLaunchSpend(this.deps, { tenant, runId, key: hold.key });
        continue;
      }
      await closeReservation(this.deps.redis, this.deps.ks, { tenant, runId, id: open.id, amountNanoUsd: priceNano });
      this.logDecision(record);
      await this.deps.outbox.send(tenant, runId, plan.intent, { deferDelete: true });
      progressed = true;
    }
    return progressed;
  }

  private async recordOnly(
    s: RunSnapshot,
    nodeId: string,
    phase: string,
    decided: DecisionRecord,
    res: DecisionResult,
    settled?: ReadonlyMap<string, string>,
  ): Promise<boolean> {
    // M8: a transient WAIT (another in-edge not done, no guess, budget, kill) claims only the
    // current set of pending upstreams, so the node is decided again when that set changes.
    const claim = phase === 'runtime' ? runtimeClaimFor(s, nodeId, decided.reason) : phase;
    const record = claim === phase ? decided : { ...decided, decisionId: `${s.header.runId}:${nodeId}:${claim}` };
    // M5: every WAIT whose guess exists is scored when its upstream ends (outcomes.ts). A stream
    // WAIT does not replace the guesses an earlier WAIT kept: those include the real guess of the
    // upstream the stream settled, which the stream's own decision knew rather than guessed.
    const kept = phase === 'stream' && s.nodes.get(nodeId)?.shadow !== undefined;
    const shadow = kept ? undefined : guessesToScore(record, res, settled);
    const ok = await recordDecision(this.deps.redis, this.deps.ks, {
      tenant: s.header.tenant,
      runId: s.header.runId,
      nodeId,
      claim,
      decisionJson: encodeDecision(record, s.header),
      ...(shadow === undefined ? {} : { shadow }),
    });
    if (ok) {
      // The node as recordDecision-2.lua wrote it (issue 13 item 1: no re-read).
      const n = s.nodes.get(nodeId);
      if (n !== undefined) s.nodes.set(nodeId, { ...n, claims: { ...n.claims, [claim]: 1 }, ...(shadow === undefined ? {} : { shadow }) });
      this.logDecision(record);
      traceDecision(this.deps.tracer, s.header, record);
    }
    return ok;
  }

  /** The most the speculative launch of `d` on `res`'s guesses can cost (at least its C_spec), nano-USD. */
  private reservationNanoUsd(s: RunSnapshot, d: WorkflowNode, res: DecisionResult): number {
    try {
      const op = renderOp(d, { runId: s.header.runId, inputs: s.header.inputs, outputs: { ...outputsOf(s), ...res.assumed } });
      return Math.max(res.cSpecNanoUsd, worstCaseNanoUsd(this.deps.priceTable, op) ?? 0);
    } catch {
      // The guess does not render (launchSpeculation will not launch either).
      return res.cSpecNanoUsd;
    }
  }

  private async launchSpeculation(
    s: RunSnapshot,
    d: WorkflowNode,
    phase: string,
    res: DecisionResult,
    reservedNanoUsd: number,
    reservationId: string,
    settled?: ReadonlyMap<string, string>,
  ): Promise<boolean> {
    const n = s.nodes.get(d.id);
    if (n === undefined) return false;
    const { tenant, runId } = s.header;
    const now = this.deps.clock.nowMs();
    let op: ReturnType<typeof renderOp>;
    try {
      op = renderOp(d, { runId, inputs: s.header.inputs, outputs: { ...outputsOf(s), ...res.assumed } });
    } catch {
      return false;
    }
    // M5/M8: the upstreams whose output the stream settled are launched on but were not guessed:
    // their edges' outcomes carry value, no evidence (outcomes.ts), and the WAIT's guess is scored.
    const st: Record<string, number> = {};
    for (const up of settled?.keys() ?? []) if (res.assumed[up] !== undefined) st[up] = 1;
    const carrier = traceDecision(this.deps.tracer, s.header, res.record);
    const plan = planLaunch({
      tenant,
      runId,
      workflow: s.workflow.name,
      node: d,
      epoch: n.epoch + 1,
      kind: 'speculative',
      op,
      assumed: res.assumed,
      decisionId: res.record.decisionId,
      streamPartials: false,
      priority: priorityFromEv(res.record.evUsd),
      ...(carrier === undefined ? {} : { trace: carrier }),
      reservationId,
      ...(s.header.opTimeoutMs === undefined ? {} : { defaultTimeoutMs: s.header.opTimeoutMs }),
      nowMs: now,
    });
    const spec: LiveSpec = {
      a: plan.attemptId,
      d: res.record.decisionId,
      assumed: res.assumed,
      ok: {},
      res: reservedNanoUsd,
      cls: res.classes,
      at: now,
      ...(Object.keys(st).length > 0 ? { st } : {}),
      ...(Object.keys(res.cascadeFrom).length > 0 ? { cas: 1, src: res.cascadeFrom } : {}),
    };
    const r = await createSpecAttempt(this.deps.redis, this.deps.ks, {
      tenant,
      runId,
      nodeId: d.id,
      expectedEpoch: n.epoch,
      claim: phase,
      attemptId: plan.attemptId,
      attemptJson: encodeAttempt(plan.attempt),
      jobId: plan.intent.jobId,
      intentJson: JSON.stringify(plan.intent),
      nowMs: now,
      decisionJson: encodeDecision(res.record, s.header),
      spec,
    });
    if (!r.ok) return false;
    // The node and attempt as createSpecAttempt-5.lua wrote them (issue 13 item 1: no re-read).
    s.nodes.set(d.id, { ...n, epoch: r.epoch, claims: { ...n.claims, [phase]: 1 }, spec });
    s.attempts.set(plan.attemptId, plan.attempt);
    this.logDecision(res.record);
    await this.deps.outbox.send(tenant, runId, plan.intent, { deferDelete: true });
    return true;
  }

  private logDecision(r: DecisionRecord): void {
    this.deps.log.info({ decision: r }, 'decision');
    this.deps.metrics?.decision(r);
  }
}
