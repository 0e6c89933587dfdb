/**
 * The `advance` event stream (issue 13 item 1; docs/runtime.md): workers, the recovery sweep and
 * the API add AdvanceEvents with one XADD each; every scheduler reads them through one consumer
 * group (`schedulers`), so each event is processed by one scheduler. A BullMQ job per event cost
 * about 45 Redis commands (add, move to active, move to finished); a stream entry costs the XADD
 * plus a share of a batched XREADGROUP, XACK and XDEL. Entries are deleted once processed; an
 * entry whose scheduler died stays pending and is claimed by another (XAUTOCLAIM).
 *
 * With queue shards (QUEUE_SHARDS, issue 13 item 4) there is one stream per shard, in the shard's
 * hash tag; a tenant's events go to its shard's stream (so a run's events keep their order), and
 * every scheduler reads every stream. `shards` below is that count (1: the one stream of before).
 */
import { type AdvanceEvent, AdvanceEventSchema } from '../schemas/jobs.js';
import { advanceKeys, type KeySpace, queueShardOf, queueShardPrefixes } from './keys.js';
import type { RedisLike } from './scripts.js';

/** The consumer group every scheduler reads the stream in. */
export const ADVANCE_GROUP = 'schedulers';
/** The entry's one field: the event's JSON. */
export const ADVANCE_FIELD = 'e';

/** The advance stream (and dead letters) of every queue shard, in shard order. */
export function advanceStreams(ks: KeySpace, shards = 1): Array<ReturnType<typeof advanceKeys>> {
  return queueShardPrefixes(ks, shards).map((p) => advanceKeys(ks, p));
}

/** Validates and adds one event to its tenant's stream; returns the entry id. */
export async function publishAdvance(redis: RedisLike, ks: KeySpace, ev: AdvanceEvent, shards = 1): Promise<string> {
  const data = AdvanceEventSchema.parse(ev);
  const stream = shards === 1 ? advanceKeys(ks).stream : (advanceStreams(ks, shards)[queueShardOf(data.tenant, shards)]?.stream as string);
  const id = await redis.xadd(stream, '*', ADVANCE_FIELD, JSON.stringify(data));
  if (id === null) throw new Error('XADD to the advance stream returned no id');
  return id;
}

/** Creates the consumer group of a stream (from its start, so no event added before is missed). */
export async function ensureAdvanceGroup(redis: RedisLike, ks: KeySpace, stream: string = advanceKeys(ks).stream): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, ADVANCE_GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!String(err).includes('BUSYGROUP')) throw err;
  }
}

export interface AdvanceEntry {
  readonly id: string;
  /** The parsed JSON of the entry (not validated), or the raw text when it is not JSON. */
  readonly data: unknown;
}

/** Entry list as XRANGE / XREADGROUP / XAUTOCLAIM return it -> entries. */
export function parseEntries(raw: unknown): AdvanceEntry[] {
  const out: AdvanceEntry[] = [];
  if (!Array.isArray(raw)) return out;
  for (const e of raw as Array<[string, string[]] | null>) {
    if (e === null || !Array.isArray(e)) continue;
    const [id, fields] = e;
    const i = Array.isArray(fields) ? fields.indexOf(ADVANCE_FIELD) : -1;
    const text = i === -1 ? '' : String(fields[i + 1]);
    let data: unknown = text;
    try {
      data = JSON.parse(text);
    } catch {
      // kept as text: the consumer dead-letters it with the reason
    }
    out.push({ id, data });
  }
  return out;
}

/** Every event still in the streams (not yet processed), oldest first per stream: for tests and inspection. */
export async function advanceBacklog(redis: RedisLike, ks: KeySpace, shards = 1): Promise<AdvanceEntry[]> {
  const all = await Promise.all(advanceStreams(ks, shards).map((k) => redis.xrange(k.stream, '-', '+')));
  return all.flatMap((raw) => parseEntries(raw));
}

/** Anything that adds AdvanceEvents (the stream below; a test's array). */
export interface AdvanceSink {
  publish(ev: AdvanceEvent): Promise<unknown>;
}

/** The streams of one key space (every queue shard) as an object: publish, read the backlog, count it. */
export class AdvanceStream implements AdvanceSink {
  readonly name = 'advance';

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly shards = 1,
  ) {}

  publish(ev: AdvanceEvent): Promise<string> {
    return publishAdvance(this.redis, this.ks, ev, this.shards);
  }

  backlog(): Promise<AdvanceEntry[]> {
    return advanceBacklog(this.redis, this.ks, this.shards);
  }

  /** Entries not yet delivered to a scheduler (`waiting`) and delivered but not yet done (`active`), over every shard. */
  async counts(): Promise<{ waiting: number; active: number; oldestMs: number | undefined }> {
    const per = await Promise.all(
      advanceStreams(this.ks, this.shards).map(async (k) => {
        const [len, pending, first] = await Promise.all([
          this.redis.xlen(k.stream),
          this.redis.xpending(k.stream, ADVANCE_GROUP).catch(() => [0]) as Promise<unknown[]>,
          this.redis.xrange(k.stream, '-', '+', 'COUNT', 1),
        ]);
        const active = Number(pending[0] ?? 0);
        const id = first[0]?.[0];
        return { waiting: Math.max(0, len - active), active, oldestMs: id === undefined ? undefined : Number(id.split('-')[0]) };
      }),
    );
    const oldest = per.map((c) => c.oldestMs).filter((x): x is number => x !== undefined);
    return {
      waiting: per.reduce((n, c) => n + c.waiting, 0),
      active: per.reduce((n, c) => n + c.active, 0),
      oldestMs: oldest.length === 0 ? undefined : Math.min(...oldest),
    };
  }
}
