/**
 * M8 SPECULATE→cancel on changed conditions. A live speculation (not yet fully confirmed, its
 * attempt queued or running) is re-decided on every reconcile of its run, cheaply: the rule is
 * re-run on the recorded decision's own C_spec, C_fail, ΔT and stage, with the *current* α and
 * λ (run dial, tenant config), the current posterior of each of its edge classes (M5, e.g. after
 * new outcomes) and the tenant's current budget (M10). When that now says WAIT, the new decision
 * is recorded (phase `runtime`, reason `below_threshold` or `budget`) and the speculation is
 * cancelled like a miss (status, cancel broadcast, queued job removed); its outcome is settled
 * as `cancelled` with the fractional waste the worker billed.
 *
 * Nothing expensive is recomputed: decision records are immutable and cached by id (one LRANGE
 * when a record is not cached), posteriors and tenant config come from their process caches, and
 * a speculation whose inputs (α, λ, posteriors, budget verdict) have not changed since its last
 * check is not re-evaluated at all.
 */
import {
  type DecisionRecord,
  type DependencyType,
  decide,
  edgeClassId,
  type PendingEdge,
  classPosterior,
  suspectParams,
  resolvePrior,
  resolveDial,
} from '@gambit/shared';
import { decodeDecision, encodeDecision, type LiveSpec, recordDecision, runKeys } from '@gambit/shared/redis';
import type { TenantConfig } from '../tenants.js';
import type { EngineDeps } from './engine.js';
import type { RunSnapshot } from './run-view.js';

/** Claim of the cancel decision of one speculative attempt (recorded once per attempt). */
export function cancelClaim(attemptId: string): string {
  return `cancel:${attemptId}`;
}

export interface RedecideDeps extends Pick<EngineDeps, 'redis' | 'ks' | 'control' | 'tenants' | 'clock' | 'log' | 'metrics'> {}

type Discard = (s: RunSnapshot, nodeId: string, attemptId: string) => Promise<boolean>;

const MAX_CACHED = 10_000;

export class Redecider {
  /** Decision id -> record (records never change once written). */
  private readonly records = new Map<string, DecisionRecord>();
  /** Attempt id -> the inputs of its last check that still said SPECULATE. */
  private readonly checked = new Map<string, string>();

  constructor(private readonly deps: RedecideDeps) {}

  /** Re-decides every live speculation of the run; true when one was cancelled. */
  async run(s: RunSnapshot, discard: Discard): Promise<boolean> {
    let progressed = false;
    for (const [nodeId, n] of s.nodes) {
      const spec = n.spec;
      if (n.state !== 'pending' || spec === undefined || spec.full === 1) continue;
      const a = s.attempts.get(spec.a);
      if (a?.status !== 'queued' && a?.status !== 'running') continue;
      // A cancel decision recorded by a scheduler that died before discarding: finish the job.
      if (n.claims[cancelClaim(spec.a)] === 1) {
        if (await discard(s, nodeId, spec.a)) progressed = true;
        continue;
      }
      if (await this.check(s, nodeId, spec, discard)) progressed = true;
    }
    return progressed;
  }

  private async check(s: RunSnapshot, nodeId: string, spec: LiveSpec, discard: Discard): Promise<boolean> {
    const { tenant, runId } = s.header;
    const rec = await this.record(s, spec.d);
    if (rec === undefined || rec.action !== 'SPECULATE') return false;
    const now = this.deps.clock.nowMs();
    const cfg = await this.deps.tenants.get(tenant, now);
    const dial = resolveDial(
      { alpha: cfg.alpha, lambdaUsdPerSec: cfg.lambdaUsdPerSec },
      {
        ...(s.header.alpha === undefined ? {} : { alpha: s.header.alpha }),
        ...(s.header.lambdaUsdPerSec === undefined ? {} : { lambdaUsdPerSec: s.header.lambdaUsdPerSec }),
      },
    );
    const edges = await this.edges(s, nodeId, spec, rec, cfg, dial.alpha);
    const budgetOk = await this.budgetCovers(tenant, cfg, spec.res);
    const key = JSON.stringify([dial.alpha, dial.lambdaUsdPerSec, edges.map((e) => [e.posterior.a, e.posterior.b]), budgetOk]);
    if (this.checked.get(spec.a) === key) return false;
    const dec = decide({
      edges,
      cSpecUsd: rec.cSpecUsd,
      predictorUsd: rec.predictorUsd,
      cFailUsd: rec.cFailUsd,
      deltaTSec: rec.deltaTSec,
      dial,
      stage: rec.stage,
      // The gates before the rule held when it launched; a kill is handled by the kill-switch.
      flags: { admissible: true, killed: false, hasPrediction: true, budgetOk, speculationEnabled: true, canarySampled: true },
    });
    if (dec.action === 'SPECULATE') {
      if (this.checked.size > MAX_CACHED) this.checked.clear();
      this.checked.set(spec.a, key);
      return false;
    }
    const claim = cancelClaim(spec.a);
    const record: DecisionRecord = { ...rec, ...dec, phase: 'runtime', decisionId: `${runId}:${nodeId}:${claim}`, atMs: Math.round(now) };
    // Recorded first (once per attempt), then discarded: a crash in between is finished by the
    // next reconcile (the claim is there), and two schedulers record it once.
    if (await recordDecision(this.deps.redis, this.deps.ks, { tenant, runId, nodeId, claim, decisionJson: encodeDecision(record, s.header) })) {
      this.deps.log.info({ decision: record, cancels: spec.a }, 'decision');
      this.deps.metrics?.decision(record);
    }
    this.checked.delete(spec.a);
    return discard(s, nodeId, spec.a);
  }

  /** The edges of the recorded decision with their classes' current posteriors (M5). */
  private async edges(s: RunSnapshot, nodeId: string, spec: LiveSpec, rec: DecisionRecord, cfg: TenantConfig, alpha: number): Promise<PendingEdge[]> {
    const recorded = rec.posteriors.map((p): PendingEdge => ({ posterior: { a: p.a, b: p.b }, mode: cfg.posteriorMode }));
    // Refreshed only where each posterior is one edge class of the decision, in order (not for
    // cascades, whose P is the source speculation's, nor where the stream settled a guess).
    if (spec.cas === 1 || rec.posteriors.length !== rec.edgeClasses.length) return recorded;
    const out: PendingEdge[] = [];
    for (const [i, classId] of rec.edgeClasses.entries()) {
      const edge = (s.graph.incoming.get(nodeId) ?? []).find((e) => edgeClassId(s.header.tenant, s.workflow.name, e.from, e.to) === classId);
      const fallback = recorded[i];
      if (fallback === undefined) continue;
      if (edge === undefined) {
        out.push(fallback);
        continue;
      }
      const rp = resolvePrior(cfg.priors, classId, edge.type as DependencyType, edge.k);
      const prior = rp.prior;
      const st = await this.deps.control.classState(classId, {
        depType: edge.type as DependencyType,
        ...(edge.k === undefined ? {} : { k: edge.k }),
        prior,
        initialStage: cfg.initialStage,
        tenant: s.header.tenant,
      });
      out.push(st === undefined ? fallback : { posterior: classPosterior(prior, st, suspectParams(cfg.calibration, alpha)), mode: rp.mode ?? cfg.posteriorMode });
    }
    return out;
  }

  /** M10: the tenant's budget, net of its realized waste, still covers this reservation. */
  private async budgetCovers(tenant: string, cfg: TenantConfig, reservedNanoUsd: number): Promise<boolean> {
    if (cfg.budgetNanoUsd === undefined) return true;
    const b = await this.deps.tenants.budget(tenant);
    return cfg.budgetNanoUsd - b.spentNanoUsd >= reservedNanoUsd;
  }

  private async record(s: RunSnapshot, decisionId: string): Promise<DecisionRecord | undefined> {
    const hit = this.records.get(decisionId);
    if (hit !== undefined) return hit;
    const raw = await this.deps.redis.lrange(runKeys(this.deps.ks, s.header.tenant, s.header.runId).decisions, 0, -1);
    if (this.records.size > MAX_CACHED) this.records.clear();
    const ctx = { tenant: s.header.tenant, workflow: s.workflow.name, runId: s.header.runId, createdAtMs: s.header.createdAtMs };
    for (const text of raw) {
      let d: DecisionRecord;
      try {
        d = decodeDecision(text, ctx);
      } catch {
        continue; // as before: an entry that is not a valid record is not a live speculation's
      }
      if (d.action === 'SPECULATE') this.records.set(d.decisionId, d);
    }
    return this.records.get(decisionId);
  }
}
