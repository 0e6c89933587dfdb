/**
 * The Redis key schema: the one place every key is built (STYLE.md 4).
 *
 * All keys start with a configurable prefix P (default `gambit`). Hash tags keep every
 * multi-key script inside one Redis Cluster slot:
 *
 * | key                                   | type   | owner      | what |
 * |---------------------------------------|--------|------------|------|
 * | P:{run:T:R}:run                       | hash   | scheduler  | run header: tenant, workflowRef (definition in P:{tenant:T}:wfdefs), inputs, status, alpha, created/finished ms, costs (nano-USD), trace:<key> per trace-carrier entry |
 * | P:{run:T:R}:nodes                     | hash   | scheduler  | node id -> node state JSON (state, epoch, auth attempt, times; a succeeded node's output is its auth attempt's), compact encoding (state-codec.ts) |
 * | P:{run:T:R}:attempts                  | hash   | worker+sch | attempt id -> attempt JSON (kind, epoch, status, output, usage, costNanoUsd, estimated), compact encoding (state-codec.ts) |
 * | P:{run:T:R}:decisions                 | list   | scheduler  | decision record JSON, in order |
 * | P:{run:T:R}:outcomes                  | list   | scheduler  | outcome JSON, in order |
 * | P:{run:T:R}:staging:A                 | list   | worker     | staged effects of attempt A, held until commit |
 * | P:{run:T:R}:effects                   | list   | scheduler  | released effects, in release order |
 * | P:{run:T:R}:intents                   | hash   | scheduler  | job id -> job payload JSON not yet confirmed enqueued (outbox) |
 * | P:{tenant:T}:config                   | hash   | scheduler  | alpha, lambdaUsdPerSec, budgetNanoUsd, posteriorMode, allowDisclosure |
 * | P:{tenant:T}:budget                   | hash   | scheduler  | reservedNanoUsd, spentNanoUsd (speculative waste ledger), open:<id> open reservations |
 * | P:{tenant:T}:settled:R                | hash   | scheduler  | run R's budget settlements: settlement id -> nano-USD booked ('-': booked once); deleted when R's record leaves `ended` (settleBudget-2.lua) |
 * | P:{tenant:T}:runs                     | zset   | scheduler  | run ids by created ms |
 * | P:{tenant:T}:workflows                | hash   | scheduler  | registered workflow name -> definition JSON |
 * | P:{tenant:T}:wfdefs                   | hash   | scheduler  | workflow definitions runs use, by content hash (workflowDefRef) -> definition JSON; a run's header holds only the hash (issue 13 item 3: one copy per definition, not one per run) |
 * | P:{tenant:T}:webhook                  | hash   | scheduler  | run-end webhook: url, secret |
 * | P:{tenant:T}:deliveries               | list   | scheduler  | recent webhook delivery attempts JSON (newest first, capped) |
 * | P:{op:T:K}:dist                       | hash   | scheduler  | learned distributions of operation class K (M4): d/f/o:{n,sum,<bin>} (core/operation-class.ts) |
 * | P:{tenant:T}:opclasses                | set    | scheduler  | operation class ids the tenant has observed |
 * | P:{class:C}:posterior                 | hash   | estimator  | a, b, hits, misses, n, stage, stage reason, counters |
 * | P:{class:C}:seen                      | zset   | estimator  | outcome ids already counted, by ms (idempotency; trimmed to 24 h) |
 * | P:{class:C}:window                    | list   | estimator  | recent hit(1)/miss(0) sequence for drift detection |
 * | P:{class:C}:windowbits                | string | estimator  | the same sequence as one string ('1'/'0', oldest first), written with the list by the same scripts: the estimator reads it per batch instead of LRANGE (issue 13 item 2) |
 * | P:{class:C}:history                   | hash   | scheduler  | predictor memory: output value -> count, request hash -> output |
 * | P:{ctl}:classes                       | set    | estimator  | all known edge class ids |
 * | P:{ctl}:tenants                       | set    | scheduler  | tenants that submitted a run or were configured (lists) |
 * | P:{ctl}:kill                          | hash   | estimator  | kill-switch state: version, global, tenants JSON, classes JSON |
 * | P:{ctl}:heartbeat                     | hash   | estimator  | estimator id -> last beat ms |
 * | P:{ctl}:outcomes                      | stream | scheduler  | outcome events for estimators (consumer group `estimators`) |
 * | P:{outcomes:I}:stream                 | stream | scheduler  | outcome shard I ≥ 1 of GAMBIT_OUTCOME_SHARDS (shard 0 is P:{ctl}:outcomes): a class's outcomes go to shard outcomeShardOf(C) |
 * | P:{ctl}:outcomes:dead                 | stream | estimator  | invalid outcome entries with the reason (dead letters) |
 * | P:{ctl}:active                        | zset   | scheduler  | T:R of unfinished runs by last-progress ms (recovery sweep) |
 * | P:{ctl}:reservations                  | zset   | scheduler  | tenants that may hold open budget reservations, by when to sweep them (ms) |
 * | P:{ctl}:sim                           | hash   | operator   | simulated-provider overrides (drift tests): node key -> outcomes JSON |
 * | P:{tenant:T}:limits                   | hash   | operator   | per-tenant caps and admission limits (overrides of the scheduler's defaults) |
 * | P:{tenant:T}:ratelimit                | hash   | scheduler  | admission token bucket: tokens, ms of the last refill |
 * | P:{tenant:T}:inflight                 | zset   | scheduler  | admitted run ids by admission ms (ended ones removed lazily) |
 * | P:{tenant:T}:spend                    | hash   | scheduler  | spend cap ledger (nano-USD): day:D, month:M booked; held:day:D, held:month:M held by launches; hold:R the holds of run R (JSON) |
 * | P:{auth}:keys                         | hash   | scheduler  | HMAC-SHA-256 (hex) of a live API key -> {keyId, tenant, createdAtMs, label} JSON |
 * | P:{tenant:T}:apikeys                  | hash   | scheduler  | key id -> {keyId, createdAtMs, revokedAtMs, label, hmac} JSON (listing; revoked ones kept) |
 * | P:{tenant:T}:kv:N                     | hash   | operator   | table N read by the built-in `kv_lookup` tool (worker) |
 * | P:{tenant:T}:charges                  | list   | worker     | charges made by the built-in irreversible `charge_card` tool |
 * | {P:q}:fair:L:ready:T                  | zset   | scheduler  | fair dispatch (issue 10 item 4): tenant T's ready job ids of lane L (ops/spec) by order |
 * | {P:q}:fair:L:items                    | hash   | scheduler  | job id -> ready job (BullMQ name, data, options, tenant) |
 * | {P:q}:fair:L:ring                     | list   | scheduler  | tenants with ready jobs, in deficit-round-robin turn order |
 * | {P:q}:fair:L:deficit                  | hash   | scheduler  | tenant -> unused quantum of its turn |
 * | {P:q}:fair:L:claimed                  | hash   | scheduler  | job id -> claimed job not yet confirmed added to BullMQ (swept) |
 * | {P:q}:fair:L:out                      | zset   | worker+sch | job ids handed to BullMQ and not finished, by claim ms (the slots in use) |
 * | {P:q}:fair:L:owner                    | hash   | worker+sch | outstanding job id -> its tenant |
 * | {P:q}:fair:L:inuse                    | hash   | worker+sch | tenant -> its outstanding jobs (slots it holds) |
 * | {P:q}:fair:weights                    | hash   | operator   | tenant -> dispatch weight (absent: 1) |
 * | {P:q}:fair:workers                    | hash   | worker     | worker id -> slots per lane and last beat ms (Redis clock) |
 * | {P:q}:shards                          | string | sch+worker | QUEUE_SHARDS the queues were set up with (checkQueueShards: a process with another count refuses to start) |
 * | {P:q}:advance:events                  | stream | worker+sch | AdvanceEvents for the schedulers (consumer group `schedulers`; entries deleted once processed) |
 * | {P:q}:advance:dead                    | stream | scheduler  | advance events that could not be processed, with the reason (dead letters) |
 * | P:{tenant:T}:charges:keys             | hash   | worker     | charge_card: idempotency key -> charge JSON (applied at most once per key) |
 * | P:{ctl}:attention                     | zset   | worker+sch | T|R|N of nodes whose attempt needs an operator, by ms (an index; the attempt is the truth) |
 * | P:{ctl}:fold                          | zset   | scheduler  | T:R of ended, settled runs whose fold into the compact record is put off (an attempt taken for lost may be billed late), by when to fold (ms) |
 * | channel P:ctl:alarms                  | pubsub | estimator  | kill-switch changes, for speed (the key is the truth) |
 * | channel P:ctl:cancel                  | pubsub | scheduler  | attempt cancellation broadcast to workers |
 *
 * The run-scoped keys (P:{run:T:R}:*) get a TTL when the run ends (expireRun-7.lua): the
 * tenant's retention (its `retentionSec`, at most its `maxRetentionSec` limit; RUN_RETENTION_SEC by
 * default). Once every attempt is settled the run is folded into `rec` (compactRun-8.lua), which
 * takes the run hash's remaining TTL.
 *
 * BullMQ queues use the prefix `{P:q}` so that all of a queue's keys share one slot.
 *
 * Queue shards (QUEUE_SHARDS, issue 13 item 4): with N > 1 the BullMQ `ops` and `spec` queues and
 * every `fair:*` key above live once per shard, under the shard's tag `{P:q:I:K}`
 * (queueShardPrefixes) instead of `{P:q}`, and so do the `advance:*` streams; a tenant's jobs and
 * advance events are in shard queueShardOf(T). `{P:q}` keeps the `webhooks` queue and
 * `{P:q}:shards` (the count the deployment's queues were set up with). With N = 1 every key is as
 * in the table.
 * T = tenant, R = run id, C = edge class id, K = operation class id, A = attempt id. Tenants, run ids and class ids must
 * not contain `{` or `}` (validated at the API).
 */

export interface KeySpace {
  readonly prefix: string;
}

export function runTag(ks: KeySpace, tenant: string, runId: string): string {
  return `${ks.prefix}:{run:${tenant}:${runId}}`;
}

export function runKeys(ks: KeySpace, tenant: string, runId: string) {
  const t = runTag(ks, tenant, runId);
  return {
    run: `${t}:run`,
    nodes: `${t}:nodes`,
    attempts: `${t}:attempts`,
    decisions: `${t}:decisions`,
    outcomes: `${t}:outcomes`,
    effects: `${t}:effects`,
    intents: `${t}:intents`,
    rec: `${t}:rec`,
    staging: (attemptId: string) => `${t}:staging:${attemptId}`,
  } as const;
}

export function tenantKeys(ks: KeySpace, tenant: string) {
  const t = `${ks.prefix}:{tenant:${tenant}}`;
  return {
    config: `${t}:config`,
    budget: `${t}:budget`,
    runs: `${t}:runs`,
    workflows: `${t}:workflows`,
    workflowDefs: `${t}:wfdefs`,
    opClasses: `${t}:opclasses`,
    webhook: `${t}:webhook`,
    deliveries: `${t}:deliveries`,
    ended: `${t}:ended`,
    /** Run R's budget settlement markers (settleBudget-2.lua); deleted with R's record (retention). */
    settled: (runId: string) => `${t}:settled:${runId}`,
  } as const;
}

/** API keys (issue 10 item 1): live keys by their HMAC, and each tenant's listing. */
export function authKeys(ks: KeySpace) {
  return {
    keys: `${ks.prefix}:{auth}:keys`,
    tenantKeys: (tenant: string) => `${ks.prefix}:{tenant:${tenant}}:apikeys`,
  } as const;
}

/** Per-tenant caps and admission (issue 10 items 4-5): limits, rate-limit bucket, in-flight runs. */
export function admissionKeys(ks: KeySpace, tenant: string) {
  const t = `${ks.prefix}:{tenant:${tenant}}`;
  return { limits: `${t}:limits`, ratelimit: `${t}:ratelimit`, inflight: `${t}:inflight`, spend: `${t}:spend` } as const;
}

/** Keys of the worker's built-in tools (kv_lookup tables, charge_card's record of charges). */
export function toolKeys(ks: KeySpace, tenant: string) {
  const t = `${ks.prefix}:{tenant:${tenant}}`;
  return { kv: (table: string) => `${t}:kv:${table}`, charges: `${t}:charges`, chargeKeys: `${t}:charges:keys` } as const;
}

/**
 * Keys of an operation class's learned estimates (M4), shared across the runs of a tenant.
 * K is an operation class id (core/operation-class.ts); it holds no braces or whitespace.
 */
export function opClassKeys(ks: KeySpace, tenant: string, opClass: string) {
  const t = `${ks.prefix}:{op:${tenant}:${opClass}}`;
  return { dist: `${t}:dist` } as const;
}

export function classKeys(ks: KeySpace, classId: string) {
  const t = `${ks.prefix}:{class:${classId}}`;
  return { posterior: `${t}:posterior`, seen: `${t}:seen`, window: `${t}:window`, windowBits: `${t}:windowbits`, history: `${t}:history` } as const;
}

export function controlKeys(ks: KeySpace) {
  const t = `${ks.prefix}:{ctl}`;
  return {
    classes: `${t}:classes`,
    tenants: `${t}:tenants`,
    kill: `${t}:kill`,
    heartbeat: `${t}:heartbeat`,
    outcomes: `${t}:outcomes`,
    outcomesDead: `${t}:outcomes:dead`,
    active: `${t}:active`,
    reservations: `${t}:reservations`,
    sim: `${t}:sim`,
    attention: `${t}:attention`,
    fold: `${t}:fold`,
    alarmsChannel: `${ks.prefix}:ctl:alarms`,
    cancelChannel: `${ks.prefix}:ctl:cancel`,
  } as const;
}

/** The most outcome shards a deployment may use (GAMBIT_OUTCOME_SHARDS). */
export const MAX_OUTCOME_SHARDS = 64;

/**
 * Issue 13 item 4, the estimator's side: the outcomes stream split into `shards` streams under
 * their own hash tags, so that in a Cluster the outcome traffic and the estimators' reads and
 * acks spread over the masters instead of all landing on the {ctl} slot. Shard 0 is the
 * historical `controlKeys().outcomes` (one shard = the single stream of before); shard I ≥ 1 is
 * `P:{outcomes:I}:stream`. Every scheduler and estimator of a deployment must use the same count.
 */
export function outcomeStreams(ks: KeySpace, shards: number): string[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_OUTCOME_SHARDS) {
    throw new Error(`outcome shards: must be an integer from 1 to ${MAX_OUTCOME_SHARDS}, got ${shards}`);
  }
  return Array.from({ length: shards }, (_, i) => (i === 0 ? controlKeys(ks).outcomes : `${ks.prefix}:{outcomes:${i}}:stream`));
}

/** The shard of a class's outcomes (FNV-1a of the class id): one class, one stream, its order kept. */
export function outcomeShardOf(edgeClass: string, shards: number): number {
  return shards <= 1 ? 0 : fnv1a(edgeClass) % shards;
}

/** BullMQ `prefix` option: a hash tag so each queue's keys stay in one cluster slot. */
export function queuePrefix(ks: KeySpace): string {
  return `{${ks.prefix}:q}`;
}

/** The most queue shards a deployment may use (QUEUE_SHARDS). */
export const MAX_QUEUE_SHARDS = 64;

/** Redis Cluster's slot of a key (CRC16-XMODEM of its hash tag, mod 16384), as CLUSTER KEYSLOT. */
export function keySlot(key: string): number {
  let tagged = key;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) tagged = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(tagged, 'utf8');
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

const shardPrefixCache = new Map<string, readonly string[]>();

/**
 * Issue 13 item 4, the queues' side: the hash tags (BullMQ prefixes) of the `shards` queue shards.
 * Each shard holds its own `ops` and `spec` BullMQ queues and the fair-dispatch keys of the
 * tenants it serves (fairKeys), all in its one slot, so every script stays single-slot.
 *
 * One shard is `{P:q}`, the tag of before (no migration). With N > 1, shard I is `{P:q:I:K}` with K
 * the smallest integer ≥ 0 that puts the tag's slot in the middle half of the I-th of N equal
 * slot ranges: the shards spread evenly over the slot space, so on a cluster whose masters own
 * equal contiguous ranges (as `redis-cli --cluster create` makes them) N = masters puts one shard
 * on each master, and a multiple of it the same number on each. Deterministic: every process
 * computes the same tags from the prefix and N.
 */
export function queueShardPrefixes(ks: KeySpace, shards: number): readonly string[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_QUEUE_SHARDS) {
    throw new Error(`QUEUE_SHARDS: must be an integer from 1 to ${MAX_QUEUE_SHARDS}, got ${shards}`);
  }
  if (shards === 1) return [queuePrefix(ks)];
  const cacheKey = `${shards}|${ks.prefix}`;
  const cached = shardPrefixCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const width = 16384 / shards;
  const out = Array.from({ length: shards }, (_, i) => {
    const lo = i * width + width / 4;
    const hi = i * width + (3 * width) / 4;
    for (let k = 0; ; k++) {
      const tag = `{${ks.prefix}:q:${i}:${k}}`;
      const slot = keySlot(tag);
      if (slot >= lo && slot < hi) return tag;
    }
  });
  shardPrefixCache.set(cacheKey, out);
  return out;
}

/** FNV-1a (32 bit) of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The queue shard of a tenant (FNV-1a of the tenant id): all of a tenant's jobs, both lanes, in one
 * shard, so its deficit round-robin turn, its in-use count and its reserved-slot test stay whole.
 */
export function queueShardOf(tenant: string, shards: number): number {
  return shards <= 1 ? 0 : fnv1a(tenant) % shards;
}

/**
 * The queue shard count a deployment's queues were set up with (issue 13 item 4): written by the
 * first scheduler or worker to start (SET NX) and checked by every other, which refuses to start
 * with a different QUEUE_SHARDS. In the base tag `{P:q}` (shard 0 of one shard).
 */
export function queueShardsKey(ks: KeySpace): string {
  return `${queuePrefix(ks)}:shards`;
}

/**
 * Issue 10 item 4, fair dispatch (fair.ts): per-lane (`ops`, `spec`) ready lists per tenant, the
 * ring of tenants with ready jobs, their deficits, claimed and outstanding jobs, and the shared
 * weights and worker registrations. In the queues' hash tag: every script's keys share one slot.
 */
export function fairKeys(ks: KeySpace, lane: 'ops' | 'spec', shardPrefix: string = queuePrefix(ks)) {
  const q = shardPrefix;
  const l = `${q}:fair:${lane}`;
  return {
    items: `${l}:items`,
    readyPrefix: `${l}:ready:`,
    ready: (tenant: string) => `${l}:ready:${tenant}`,
    ring: `${l}:ring`,
    deficit: `${l}:deficit`,
    claimed: `${l}:claimed`,
    out: `${l}:out`,
    owner: `${l}:owner`,
    inuse: `${l}:inuse`,
    weights: `${q}:fair:weights`,
    workers: `${q}:fair:workers`,
  } as const;
}

/**
 * The `advance` event stream (issue 13): one XADD per event instead of a BullMQ job, read by every
 * scheduler through the consumer group `schedulers`. In the queues' hash tag; with queue shards
 * (QUEUE_SHARDS), one stream per shard, in its tag (a tenant's events in its shard's stream).
 */
export function advanceKeys(ks: KeySpace, shardPrefix: string = queuePrefix(ks)) {
  const q = shardPrefix;
  return { stream: `${q}:advance:events`, dead: `${q}:advance:dead` } as const;
}

/**
 * Issue 13 item 3: default approximate length of BullMQ's event stream per queue (QUEUE_EVENTS_MAX_LEN
 * on the scheduler and the worker: every process that opens a Queue writes it to the queue's meta,
 * so they must agree). Nothing in Gambit reads the stream (no QueueEvents in the scheduler, the
 * worker, the console or the CLI); each entry costs Redis memory, so the default keeps a few dozen
 * (Redis trims approximately, by whole stream nodes of `stream-node-max-entries`, 100 by default).
 */
export const QUEUE_EVENTS_MAX_LEN_DEFAULT = 50;

export const QUEUES = {
  /** Authoritative LLM and tool operations: their own worker slots, never shared with speculation. */
  ops: 'ops',
  /** Speculative operations, prioritised by expected value (BullMQ priority 1..2,097,152, lower first). */
  spec: 'spec',
  /** Events that advance a run: attempt finished, partial output, recovery (a stream: advanceKeys). */
  advance: 'advance',
  /** Run-end webhook deliveries (retried with backoff; docs/api.md, Webhooks). */
  webhooks: 'webhooks',
} as const;

import { ValidationError } from '../errors.js';

const FORBIDDEN = /[{}\s]/;
/** Tenant ids, run ids and class ids become parts of keys: no braces, no whitespace. */
export function assertKeySafe(field: string, value: string): void {
  if (value.length === 0 || value.length > 128 || FORBIDDEN.test(value)) {
    throw new ValidationError([{ path: field, message: 'must be 1-128 characters without braces or whitespace' }]);
  }
}
