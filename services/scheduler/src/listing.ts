/**
 * Lists behind the platform API (docs/api.md, Lists): runs newest first with filters and a
 * cursor, the known tenants, registered workflows by page, and the dollars saved and wasted and
 * seconds saved per tenant and workflow over time (the console's chart; M3 net value
 * NV = λ × seconds saved − dollars wasted, λ of each decision).
 */
import { OutcomeSchema, type RunListQuery, type StatsQuery } from '@gambit/shared';
import { controlKeys, decodeDecision, expandRunRecord, type KeySpace, type RedisLike, runKeys, tenantKeys } from '@gambit/shared/redis';
import { decodeCursor, encodeCursor } from './cursor.js';

export interface RunSummary {
  readonly tenant: string;
  readonly runId: string;
  readonly workflow: string;
  readonly status: string;
  readonly reason: string | null;
  readonly speculation: boolean;
  readonly createdAtMs: number;
  readonly finishedAtMs: number | null;
}

interface Candidate {
  readonly tenant: string;
  readonly runId: string;
  readonly score: number;
}

/** Newest first; ties by tenant then run id, both descending (the cursor's order). */
function before(a: Candidate, b: { s: number; t: string; r: string }): boolean {
  if (a.score !== b.s) return a.score < b.s;
  if (a.tenant !== b.t) return a.tenant < b.t;
  return a.runId < b.r;
}

function order(a: Candidate, b: Candidate): number {
  if (a.score !== b.score) return b.score - a.score;
  if (a.tenant !== b.tenant) return a.tenant < b.tenant ? 1 : -1;
  return a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0;
}

export async function listTenants(redis: RedisLike, ks: KeySpace): Promise<string[]> {
  return (await redis.smembers(controlKeys(ks).tenants)).sort();
}

async function summaries(redis: RedisLike, ks: KeySpace, cands: readonly Candidate[]): Promise<Array<RunSummary | undefined>> {
  const fields = ['workflowName', 'status', 'reason', 'speculation', 'createdAtMs', 'finishedAtMs'] as const;
  return Promise.all(
    cands.map(async (c) => {
      const v = await redis.hmget(runKeys(ks, c.tenant, c.runId).run, ...fields);
      if (v[1] === null || v[1] === undefined) return undefined; // expired (retention) or never created
      return {
        tenant: c.tenant,
        runId: c.runId,
        workflow: v[0] ?? '',
        status: v[1],
        reason: v[2] ?? null,
        speculation: v[3] !== '0',
        createdAtMs: Number(v[4] ?? c.score),
        finishedAtMs: v[5] === null || v[5] === undefined ? null : Number(v[5]),
      };
    }),
  );
}

/**
 * GET /v1/runs. `tenants` are the tenants in scope (one for a tenant key or a `tenant` filter,
 * every known tenant for an operator). Each tenant's run index is read after the cursor in
 * batches; the merged candidates are read and filtered until the page is full.
 */
export async function listRuns(
  redis: RedisLike,
  ks: KeySpace,
  tenants: readonly string[],
  q: RunListQuery,
): Promise<{ runs: RunSummary[]; nextCursor: string | null }> {
  const cur = q.cursor === undefined ? undefined : decodeCursor(q.cursor, 'cursor');
  const pos = cur === undefined ? undefined : { s: Number(cur.s), t: String(cur.t), r: String(cur.r) };
  const max = pos !== undefined ? Math.min(pos.s, q.until === undefined ? Number.POSITIVE_INFINITY : q.until - 1) : q.until === undefined ? Number.POSITIVE_INFINITY : q.until - 1;
  const min = q.since ?? Number.NEGATIVE_INFINITY;
  const batch = Math.max(q.limit * 2, 100);
  const out: RunSummary[] = [];
  let last: Candidate | undefined;
  let exhausted = false;
  let cursorPos = pos;
  // Bounded: at most 20 batches per request; a page cut short still carries a cursor.
  for (let round = 0; round < 20 && out.length < q.limit && !exhausted; round++) {
    const lists = await Promise.all(
      tenants.map(async (tenant) => {
        const hi = cursorPos === undefined ? max : Math.min(max, cursorPos.s);
        const raw = await redis.zrange(tenantKeys(ks, tenant).runs, hi === Number.POSITIVE_INFINITY ? '+inf' : String(hi), min === Number.NEGATIVE_INFINITY ? '-inf' : String(min), 'BYSCORE', 'REV', 'LIMIT', 0, batch, 'WITHSCORES');
        const cands: Candidate[] = [];
        for (let i = 0; i + 1 < raw.length; i += 2) cands.push({ tenant, runId: raw[i] as string, score: Number(raw[i + 1]) });
        return { full: raw.length / 2 >= batch, cands: cursorPos === undefined ? cands : cands.filter((c) => before(c, cursorPos as { s: number; t: string; r: string })) };
      }),
    );
    const merged = lists.flatMap((l) => l.cands).sort(order);
    // Only candidates newer than every truncated list's last item are complete in order.
    let cut = merged.length;
    for (const l of lists) {
      const tail = l.cands.at(-1);
      if (l.full && tail !== undefined) cut = Math.min(cut, merged.indexOf(tail) + 1);
    }
    const ready = merged.slice(0, cut);
    exhausted = lists.every((l) => !l.full);
    if (ready.length === 0) break;
    const sums = await summaries(redis, ks, ready);
    for (let i = 0; i < ready.length && out.length < q.limit; i++) {
      last = ready[i];
      const s = sums[i];
      if (s === undefined) continue;
      if (q.status !== undefined && s.status !== q.status) continue;
      if (q.workflow !== undefined && s.workflow !== q.workflow) continue;
      out.push(s);
    }
    if (last !== undefined) cursorPos = { s: last.score, t: last.tenant, r: last.runId };
    if (cut < merged.length) exhausted = false;
  }
  const more = !exhausted || (last !== undefined && out.length === q.limit);
  return { runs: out, nextCursor: more && cursorPos !== undefined ? encodeCursor(cursorPos) : null };
}

export interface StatsPoint {
  /** Start of the bucket, ms since the epoch. */
  readonly t: number;
  readonly hits: number;
  readonly misses: number;
  readonly cancelled: number;
  readonly secondsSaved: number;
  /** λ × seconds saved, with the λ of each outcome's decision (M3). */
  readonly savedUsd: number;
  readonly wastedUsd: number;
  /** savedUsd − wastedUsd. */
  readonly netUsd: number;
}

export interface StatsSeries {
  readonly tenant: string;
  readonly workflow: string;
  readonly points: StatsPoint[];
  readonly total: Omit<StatsPoint, 't'>;
}

/**
 * GET /v1/stats: every scored speculation outcome (hits, misses, cancels; shadow scores cost and
 * save nothing and are left out) of the tenants' most recent runs since `since`, bucketed by the
 * outcome's time, per tenant and workflow.
 */
export async function runStats(redis: RedisLike, ks: KeySpace, tenants: readonly string[], q: StatsQuery, nowMs: number): Promise<{ bucketSec: number; series: StatsSeries[] }> {
  const since = q.since ?? nowMs - 3_600_000;
  const series = new Map<string, Map<number, { hits: number; misses: number; cancelled: number; secondsSaved: number; savedUsd: number; wastedUsd: number }>>();
  const bucketMs = q.bucketSec * 1000;
  await Promise.all(
    tenants.map(async (tenant) => {
      const ids = await redis.zrange(tenantKeys(ks, tenant).runs, '+inf', String(since), 'BYSCORE', 'REV', 'LIMIT', 0, q.maxRuns);
      await Promise.all(
        ids.map(async (runId) => {
          const k = runKeys(ks, tenant, runId);
          const [[wf, created], live, liveDecisions, rec] = await Promise.all([redis.hmget(k.run, 'workflowName', 'createdAtMs'), redis.lrange(k.outcomes, 0, -1), redis.lrange(k.decisions, 0, -1), redis.get(k.rec)]);
          // Issue 13 item 3: a folded run's outcomes and decisions are in its compact record.
          const folded = rec === null ? undefined : expandRunRecord(rec, 0, `run ${tenant}/${runId}`);
          const outcomes = folded?.outcomes ?? live;
          const decisions = folded?.decisions ?? liveDecisions;
          if (wf === null || wf === undefined || (q.workflow !== undefined && wf !== q.workflow) || outcomes.length === 0) return;
          const lambda = new Map<string, number>();
          for (const d of decisions) {
            try {
              const r = decodeDecision(d, { tenant, workflow: wf, runId, createdAtMs: Number(created) });
              lambda.set(r.decisionId, r.lambdaUsdPerSec);
            } catch {
              // as before: an entry that is not a valid record contributes no λ
            }
          }
          const key = `${tenant}\u0000${wf}`;
          const m = series.get(key) ?? new Map();
          series.set(key, m);
          for (const raw of outcomes) {
            const o = OutcomeSchema.parse(JSON.parse(raw));
            if (o.kind !== 'hit' && o.kind !== 'miss' && o.kind !== 'cancelled') continue;
            const t = Math.floor(o.atMs / bucketMs) * bucketMs;
            const p = m.get(t) ?? { hits: 0, misses: 0, cancelled: 0, secondsSaved: 0, savedUsd: 0, wastedUsd: 0 };
            if (o.kind === 'hit') p.hits++;
            else if (o.kind === 'miss') p.misses++;
            else p.cancelled++;
            p.secondsSaved += o.secondsSaved;
            p.savedUsd += (lambda.get(o.decisionId) ?? 0) * o.secondsSaved;
            // M10: a paid guess is extra dollars on a hit and a miss alike (NV counts it).
            p.wastedUsd += o.wasteUsd + (o.guessUsd ?? 0);
            m.set(t, p);
          }
        }),
      );
    }),
  );
  const out: StatsSeries[] = [];
  for (const [key, m] of [...series.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [tenant = '', workflow = ''] = key.split('\u0000');
    const points = [...m.entries()].sort(([a], [b]) => a - b).map(([t, p]) => ({ t, ...p, netUsd: p.savedUsd - p.wastedUsd }));
    const total = points.reduce(
      (acc, p) => ({
        hits: acc.hits + p.hits,
        misses: acc.misses + p.misses,
        cancelled: acc.cancelled + p.cancelled,
        secondsSaved: acc.secondsSaved + p.secondsSaved,
        savedUsd: acc.savedUsd + p.savedUsd,
        wastedUsd: acc.wastedUsd + p.wastedUsd,
        netUsd: acc.netUsd + p.netUsd,
      }),
      { hits: 0, misses: 0, cancelled: 0, secondsSaved: 0, savedUsd: 0, wastedUsd: 0, netUsd: 0 },
    );
    out.push({ tenant, workflow, points, total });
  }
  return { bucketSec: q.bucketSec, series: out };
}
