/**
 * Per-tenant caps and admission (issue 10 items 4-5).
 *
 * Caps bound what one request may make the system hold or send: the rendered size of every
 * prompt, system prompt and tool argument (computed arithmetically from the template and the
 * inputs, so an amplifying template is refused before anything is rendered, stored or sent),
 * `maxTokens`, nodes, edges and fan-out. A request over a cap is refused with 413 (prompt size)
 * or 422 (structure), naming the cap, before anything is stored.
 *
 * Admission bounds how fast and how much a tenant may submit: a token bucket (runs per second,
 * burst) and a cap on in-flight runs, in Redis (admitRun-2.lua), so every scheduler shares them;
 * a refused submit gets 429 with `Retry-After`.
 *
 * A spend cap (issue 10 item 3, second half) bounds ALL of a tenant's spend, authoritative and
 * speculative, per UTC day or month (`spendCapUsd`, `spendCapPeriod`). It is enforced at every
 * launch (engine/spend.ts, holdSpend-1.lua): the launch's worst case is held against the cap
 * atomically (booked + held + worst case never passes it), and an ended run, once nothing of it
 * can bill any more, books its settled cost (the sum of its attempts' billed `costNanoUsd`) and
 * releases its holds (settleRunSpend-2.lua). An authoritative node the cap cannot cover fails its
 * run (`SPEND_CAP_EXCEEDED`); a speculative launch or a paid guess becomes a `budget` WAIT. A
 * submit while booked + held is at or above the cap is refused with 402 SPEND_CAP_REACHED naming
 * `spendCapUsd`.
 *
 * Defaults come from the scheduler's environment (TENANT_*); the operator overrides them per
 * tenant (`PUT /v1/admin/tenants/{tenant}/limits`).
 */
import { type Edge, MAX_OP_TIMEOUT_MS, nanoToUsd, usdToNano, type Workflow, type WorkflowNode } from '@gambit/shared';
import { admissionKeys, admitRun, fairKeys, type KeySpace, queueShardOf, queueShardPrefixes, type RedisLike, runKeys, spendPeriodField } from '@gambit/shared/redis';
import { z } from 'zod';
import { HttpError } from './http/errors.js';

export const LimitsSchema = z
  .object({
    /** Largest rendered prompt (+ system prompt), or rendered tool arguments, of one operation, bytes. */
    maxPromptBytes: z.number().int().positive().max(100_000_000),
    /** Largest `maxTokens` of a node or an llm predictor. */
    maxTokens: z.number().int().positive().max(1_000_000),
    maxNodes: z.number().int().positive().max(500),
    maxEdges: z.number().int().nonnegative().max(5_000),
    /** Most out-edges of one node. */
    maxFanOut: z.number().int().positive().max(5_000),
    /** Admission: sustained run submits per second. */
    ratePerSec: z.number().positive().max(1_000_000),
    /** Admission: submits allowed at once above the rate (the bucket's size). */
    burst: z.number().int().positive().max(1_000_000),
    /** Admission: runs admitted and not yet ended. */
    maxInFlightRuns: z.number().int().positive().max(10_000_000),
    /**
     * Issue 10 item 4: the deadline (ms of one try) of an operation whose node sets no
     * `timeoutMs`; fixed into the run at submit. The worker caps every deadline at its
     * WORKER_MAX_OP_TIMEOUT_MS.
     */
    opTimeoutMs: z.number().int().positive().max(MAX_OP_TIMEOUT_MS),
    /**
     * Issue 10 item 4: the tenant's share in fair dispatch (deficit round-robin quantum: jobs per
     * turn; 2 = twice the jobs of a weight-1 tenant while both have work waiting). Default 1.
     */
    weight: z.number().positive().max(1_000).optional(),
    /** Issue 10 item 6: when set, the only hosts the tenant's tools may reach (`example.com`, `*.example.com`). */
    outboundAllowHosts: z.array(z.string().min(1).max(253).regex(/^(\*\.)?[A-Za-z0-9.-]+$/, 'a host name, or *. and a domain')).max(1_000).optional(),
    /** Issue 10 item 3: cap on ALL the tenant's spend (authoritative included) per `spendCapPeriod`, dollars. */
    spendCapUsd: z.number().nonnegative().max(100_000_000).optional(),
    /** The spend cap's period (UTC calendar day or month); `month` when not set. */
    spendCapPeriod: z.enum(['day', 'month']).optional(),
    /**
     * Issue 10 items 5 and 9: the longest an ended run's record is kept, seconds (0 = for ever).
     * The tenant's own `retentionSec` (tenant configuration) may only be shorter.
     */
    maxRetentionSec: z.number().int().nonnegative().max(10 * 365 * 24 * 3600),
    /** Issue 10 item 5: ended runs kept at most; beyond it the oldest ended records are dropped. */
    maxRunsKept: z.number().int().positive().max(100_000_000),
  })
  .strict();
export type Limits = z.infer<typeof LimitsSchema>;
export const LimitsPatchSchema = LimitsSchema.partial().strict();
export type LimitsPatch = z.infer<typeof LimitsPatchSchema>;

/** Output size assumed for a node-output reference at submit: `maxTokens` × this many bytes. */
export const BYTES_PER_OUTPUT_TOKEN = 4;

export class LimitStore {
  private readonly cache = new Map<string, { atMs: number; limits: Limits }>();

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly defaults: Limits,
    private readonly cacheMs = 1_000,
    /** QUEUE_SHARDS: a tenant's dispatch weight is kept in its queue shard (issue 13 item 4). */
    private readonly queueShards = 1,
  ) {}

  async get(tenant: string, nowMs = Date.now()): Promise<Limits> {
    const hit = this.cache.get(tenant);
    if (hit !== undefined && nowMs - hit.atMs < this.cacheMs) return hit.limits;
    const raw = await this.redis.get(admissionKeys(this.ks, tenant).limits);
    const limits = { ...this.defaults, ...(raw === null ? {} : (JSON.parse(raw) as LimitsPatch)) };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenant, { atMs: nowMs, limits });
    return limits;
  }

  /** Stores the tenant's overrides (operator): given fields replace stored ones; the rest stay. */
  async put(tenant: string, patch: LimitsPatch): Promise<Limits> {
    const key = admissionKeys(this.ks, tenant).limits;
    const raw = await this.redis.get(key);
    const merged = { ...(raw === null ? {} : (JSON.parse(raw) as LimitsPatch)), ...patch };
    await this.redis.set(key, JSON.stringify(merged));
    // The dispatcher reads weights in the slot of the tenant's queue shard (fairClaim-9.lua), not from the limits.
    if (patch.weight !== undefined) {
      const shard = queueShardPrefixes(this.ks, this.queueShards)[queueShardOf(tenant, this.queueShards)];
      await this.redis.hset(fairKeys(this.ks, 'ops', shard).weights, tenant, String(patch.weight));
    }
    this.cache.delete(tenant);
    return this.get(tenant);
  }

  defaultsView(): Limits {
    return this.defaults;
  }
}

export type SpendPeriod = 'day' | 'month';

/** The ledger field of the period containing `nowMs` (UTC): `day:2026-12-07`, `month:2026-12`. */
export { spendPeriodField };

/**
 * Issue 10 item 3: the tenant's spend per UTC day and month (hash `admissionKeys(ks,t).spend`,
 * integer nano-USD per period field: `day:D`/`month:M` booked from settled runs, `held:day:D`/
 * `held:month:M` held by launches of runs not yet settled). Written only by the Lua scripts of
 * engine/spend.ts; read here.
 */
export class SpendLedger {
  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
  ) {}

  /** The spend booked, and the spend held by running work, in the period containing `nowMs`, nano-USD. */
  async spent(tenant: string, period: SpendPeriod, nowMs: number): Promise<{ bookedNanoUsd: number; heldNanoUsd: number }> {
    const field = spendPeriodField(period, nowMs);
    const [booked, held] = await this.redis.hmget(admissionKeys(this.ks, tenant).spend, field, `held:${field}`);
    return { bookedNanoUsd: Number(booked ?? 0), heldNanoUsd: Number(held ?? 0) };
  }

  /** Admission (402 SPEND_CAP_REACHED naming spendCapUsd) when the period's booked plus held spend has reached the cap. */
  async check(tenant: string, limits: Limits, nowMs: number): Promise<void> {
    if (limits.spendCapUsd === undefined) return;
    const period = limits.spendCapPeriod ?? 'month';
    const { bookedNanoUsd, heldNanoUsd } = await this.spent(tenant, period, nowMs);
    const cap = usdToNano(limits.spendCapUsd);
    if (bookedNanoUsd + heldNanoUsd >= cap)
      throw new HttpError(
        402,
        'SPEND_CAP_REACHED',
        `spendCapUsd: the tenant's spend this ${period} (${spendPeriodField(period, nowMs)}), ${nanoToUsd(bookedNanoUsd)} USD booked plus ${nanoToUsd(heldNanoUsd)} USD held by running work, has reached its cap spendCapUsd = ${limits.spendCapUsd} USD`,
        'spendCapUsd',
      );
  }
}

function capError(status: 413 | 422, field: string, cap: keyof Limits, limit: number, actual: number, what: string): HttpError {
  return new HttpError(status, status === 413 ? 'PAYLOAD_TOO_LARGE' : 'CAP_EXCEEDED', `${field}: ${what} ${actual} exceeds the tenant's cap ${cap} = ${limit}`, field);
}

const TEMPLATE_REF = /\{\{\s*([^}]+?)\s*\}\}/g;

function walk(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/**
 * The most bytes `tpl` renders to: its literal text plus, per reference, the input's size (as
 * rendered) or an upstream output's bound (`maxTokens` × 4 bytes for an llm node; a tool's
 * output counts 0 here). Nothing is rendered, so a template that repeats a large input is priced
 * without being built.
 */
export function renderedBytesBound(tpl: string, inputs: Readonly<Record<string, unknown>>, byId: ReadonlyMap<string, WorkflowNode>, sizes: Map<string, number>): number {
  let total = Buffer.byteLength(tpl.replace(TEMPLATE_REF, ''), 'utf8');
  for (const m of tpl.matchAll(TEMPLATE_REF)) {
    const ref = m[1] ?? '';
    let size = sizes.get(ref);
    if (size === undefined) {
      const parts = ref.split('.');
      if (parts[0] === 'inputs') {
        const v = walk(inputs, parts.slice(1));
        size = v === undefined ? 0 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
      } else if (parts[0] === 'nodes') {
        const up = byId.get(parts[1] ?? '');
        size = up?.kind === 'llm' ? up.maxTokens * BYTES_PER_OUTPUT_TOKEN : 0;
      } else size = 0;
      sizes.set(ref, size);
    }
    total += size;
  }
  return total;
}

/** Structure caps (nodes, edges, fan-out, maxTokens): at registration and at submit. */
export function checkStructureCaps(wf: Workflow, limits: Limits): void {
  if (wf.nodes.length > limits.maxNodes) throw capError(422, 'workflow.nodes', 'maxNodes', limits.maxNodes, wf.nodes.length, 'node count');
  if (wf.edges.length > limits.maxEdges) throw capError(422, 'workflow.edges', 'maxEdges', limits.maxEdges, wf.edges.length, 'edge count');
  const fanOut = new Map<string, number>();
  for (const e of wf.edges) fanOut.set(e.from, (fanOut.get(e.from) ?? 0) + 1);
  for (const [from, n] of fanOut)
    if (n > limits.maxFanOut) throw capError(422, `workflow.edges (from "${from}")`, 'maxFanOut', limits.maxFanOut, n, 'fan-out');
  wf.nodes.forEach((n, i) => {
    if (n.kind === 'llm' && n.maxTokens > limits.maxTokens) throw capError(422, `workflow.nodes[${i}].maxTokens`, 'maxTokens', limits.maxTokens, n.maxTokens, 'maxTokens');
  });
  wf.edges.forEach((e: Edge, i) => {
    const p = e.predictor;
    if (p?.kind === 'llm' && p.maxTokens !== undefined && p.maxTokens > limits.maxTokens)
      throw capError(422, `workflow.edges[${i}].predictor.maxTokens`, 'maxTokens', limits.maxTokens, p.maxTokens, 'maxTokens');
  });
}

/** Every cap, on a workflow and the inputs it will run with (submit). */
export function checkCaps(wf: Workflow, inputs: Readonly<Record<string, unknown>>, limits: Limits): void {
  checkStructureCaps(wf, limits);
  const byId = new Map(wf.nodes.map((n) => [n.id, n] as const));
  const sizes = new Map<string, number>();
  wf.nodes.forEach((n, i) => {
    let bytes: number;
    let field: string;
    if (n.kind === 'llm') {
      bytes = renderedBytesBound(n.prompt, inputs, byId, sizes) + (n.system === undefined ? 0 : renderedBytesBound(n.system, inputs, byId, sizes));
      field = `workflow.nodes[${i}].prompt`;
    } else {
      bytes = 0;
      for (const v of Object.values(n.args)) bytes += typeof v === 'string' ? renderedBytesBound(v, inputs, byId, sizes) : Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');
      field = `workflow.nodes[${i}].args`;
    }
    if (bytes > limits.maxPromptBytes) throw capError(413, field, 'maxPromptBytes', limits.maxPromptBytes, bytes, 'rendered size (bytes)');
  });
  wf.edges.forEach((e, i) => {
    const p = e.predictor;
    if (p?.kind !== 'llm' || p.prompt === undefined) return;
    const bytes = renderedBytesBound(p.prompt, inputs, byId, sizes);
    if (bytes > limits.maxPromptBytes) throw capError(413, `workflow.edges[${i}].predictor.prompt`, 'maxPromptBytes', limits.maxPromptBytes, bytes, 'rendered size (bytes)');
  });
}

/**
 * Admits a run of `tenant` (issue 10 item 4) or throws 429 with Retry-After. When the in-flight
 * cap is reached, ended runs are removed from the tenant's in-flight set and the run is tried once
 * more.
 */
export async function admit(redis: RedisLike, ks: KeySpace, tenant: string, runId: string, limits: Limits, nowMs: number): Promise<void> {
  const args = { tenant, runId, nowMs, ratePerSec: limits.ratePerSec, burst: limits.burst, maxInFlightRuns: limits.maxInFlightRuns };
  let a = await admitRun(redis, ks, args);
  if (a.kind === 'inflight') {
    const key = admissionKeys(ks, tenant).inflight;
    const ids = await redis.zrange(key, '0', '-1');
    const statuses = await Promise.all(ids.map((id) => redis.hget(runKeys(ks, tenant, id).run, 'status')));
    const ended = ids.filter((_, i) => statuses[i] !== 'running');
    if (ended.length > 0) await redis.zrem(key, ...ended);
    a = await admitRun(redis, ks, args);
  }
  if (a.kind === 'rate')
    throw new HttpError(429, 'RATE_LIMITED', `tenant submit rate above ratePerSec = ${limits.ratePerSec} (burst ${limits.burst}): retry after ${a.retryAfterMs} ms`, undefined, {
      'retry-after': String(Math.max(1, Math.ceil(a.retryAfterMs / 1000))),
    });
  if (a.kind === 'inflight')
    throw new HttpError(429, 'TOO_MANY_RUNS', `tenant has ${a.runs} runs in flight, the cap maxInFlightRuns = ${limits.maxInFlightRuns}`, undefined, { 'retry-after': '1' });
}
