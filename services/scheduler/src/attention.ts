/**
 * Issue 11 D2: attempts stopped in `needs_attention`. A worker stops an irreversible tool there
 * instead of running it again when an earlier try may have started and the tool takes no
 * idempotency key. The operator looks at the outside world and resolves the node: succeeded (with
 * the output the downstream nodes will read) or failed (the run fails as for any failed node).
 * The index `P:{ctl}:attention` lists the candidates; the attempt record is the truth.
 */
import { ConflictError, type Clock, type Logger, NotFoundError } from '@gambit/shared';
import {
  attentionMember,
  controlKeys,
  defineAttentionScripts,
  type KeySpace,
  type RedisLike,
  resolveAttention,
} from '@gambit/shared/redis';
import type { RunEngine } from './engine/engine.js';
import { loadRun } from './engine/run-view.js';

export interface AttentionItem {
  readonly tenant: string;
  readonly runId: string;
  readonly nodeId: string;
  readonly attemptId: string;
  readonly reason: string;
  readonly sinceMs: number;
}

export type Resolution = { readonly resolution: 'succeeded'; readonly output: string } | { readonly resolution: 'failed'; readonly error: string };

export interface AttentionDeps {
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly engine: Pick<RunEngine, 'reconcile'>;
  readonly clock: Clock;
  readonly log: Logger;
}

export class AttentionService {
  constructor(private readonly deps: AttentionDeps) {
    defineAttentionScripts(deps.redis);
  }

  /** The nodes that wait for an operator (optionally of one tenant), oldest first. */
  async list(tenant?: string, limit = 200): Promise<AttentionItem[]> {
    const index = controlKeys(this.deps.ks).attention;
    const flat = await this.deps.redis.zrange(index, '0', '-1', 'WITHSCORES');
    const out: AttentionItem[] = [];
    for (let i = 0; i + 1 < flat.length && out.length < limit; i += 2) {
      const member = flat[i] as string;
      const [t, runId, nodeId] = member.split('|') as [string, string, string];
      if (tenant !== undefined && t !== tenant) continue;
      const item = await this.current(t, runId, nodeId);
      if (item === undefined) {
        // Resolved, or the run is gone: the index entry is stale.
        await this.deps.redis.zrem(index, member);
        continue;
      }
      out.push({ ...item, sinceMs: Number(flat[i + 1]) });
    }
    return out;
  }

  /** The node's authoritative attempt if it is in `needs_attention`. */
  private async current(tenant: string, runId: string, nodeId: string): Promise<Omit<AttentionItem, 'sinceMs'> | undefined> {
    const s = await loadRun(this.deps.redis, this.deps.ks, tenant, runId);
    const n = s?.nodes.get(nodeId);
    const a = n?.auth === undefined ? undefined : s?.attempts.get(n.auth);
    if (a?.status !== 'needs_attention') return undefined;
    return { tenant, runId, nodeId, attemptId: a.attemptId, reason: a.attention ?? '' };
  }

  /**
   * Resolves the node's attempt, then advances the run. NOT_FOUND when the run or node does not
   * exist; CONFLICT when the node is not waiting for an operator (nothing is changed then).
   */
  async resolve(tenant: string, runId: string, nodeId: string, r: Resolution): Promise<{ attemptId: string; status: string; runStatus: string }> {
    const s = await loadRun(this.deps.redis, this.deps.ks, tenant, runId);
    if (s === undefined) throw new NotFoundError(`run ${tenant}/${runId} not found`);
    const n = s.nodes.get(nodeId);
    if (n === undefined) throw new NotFoundError(`run ${tenant}/${runId} has no node "${nodeId}"`);
    const attemptId = n.auth;
    const a = attemptId === undefined ? undefined : s.attempts.get(attemptId);
    if (attemptId === undefined || a?.status !== 'needs_attention')
      throw new ConflictError(`node "${nodeId}" of run ${tenant}/${runId} does not need attention (attempt status ${a?.status ?? 'none'})`);
    const text = r.resolution === 'succeeded' ? r.output : r.error;
    const res = await resolveAttention(this.deps.redis, this.deps.ks, { tenant, runId, attemptId, resolution: r.resolution, text, nowMs: this.deps.clock.nowMs() });
    if (res.code === 'MISSING') throw new NotFoundError(`attempt ${attemptId} of run ${tenant}/${runId} not found`);
    if (res.code === 'NOT_NEEDED') throw new ConflictError(`node "${nodeId}" of run ${tenant}/${runId} was resolved meanwhile (attempt status ${res.status})`);
    await this.deps.redis.zrem(controlKeys(this.deps.ks).attention, attentionMember(tenant, runId, nodeId));
    this.deps.log.info({ tenant, runId, nodeId, attemptId, resolution: r.resolution }, 'attention resolved by operator');
    await this.deps.engine.reconcile(tenant, runId);
    const runStatus = (await loadRun(this.deps.redis, this.deps.ks, tenant, runId))?.header.status ?? 'unknown';
    return { attemptId, status: res.status, runStatus };
  }
}
