/**
 * The outcome stream's delivery cut and trimming. The cut of a stream is, over all consumer
 * groups, the smallest of each group's oldest pending id and its last-delivered id: every entry
 * before it has been delivered and acknowledged by every group, so it is never delivered again.
 * Trimming removes the entries before the cut (the stream does not grow forever); the outcome-id
 * dedupe keeps every id applied since the cut (dedupe-horizon.ts): a pending entry may come back.
 */
import type { RedisLike } from '@gambit/shared/redis';

function cmpId(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

/** The stream's delivery cut (an entry id), or undefined when there is no stream or no group yet. */
export async function deliveryCut(redis: RedisLike, stream: string): Promise<string | undefined> {
  let groups: unknown[][];
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  } catch {
    return undefined; // no stream yet
  }
  let cut: string | undefined;
  for (const g of groups) {
    const name = String(g[g.indexOf('name') + 1]);
    const lastDelivered = String(g[g.indexOf('last-delivered-id') + 1]);
    const summary = (await redis.xpending(stream, name)) as [number, string | null, string | null, unknown];
    const oldestPending = summary[1];
    const groupCut = oldestPending !== null && cmpId(oldestPending, lastDelivered) < 0 ? oldestPending : lastDelivered;
    if (cut === undefined || cmpId(groupCut, cut) < 0) cut = groupCut;
  }
  return cut;
}

/** The ms part of an entry id (the Redis server's clock when the entry was added). */
export function entryMs(id: string): number {
  return Number(id.split('-')[0]);
}

/** Removes the entries before `cut` (deliveryCut); returns how many (0 for no cut or '0-0'). */
export async function trimBefore(redis: RedisLike, stream: string, cut: string | undefined): Promise<number> {
  if (cut === undefined || cut === '0-0') return 0;
  // MINID keeps entries with id >= cut: the oldest pending entry (or the next unread one) stays.
  return Number(await redis.xtrim(stream, 'MINID', cut));
}

/** Returns the number of entries removed (0 when there is no group yet). */
export async function trimAcknowledged(redis: RedisLike, stream: string): Promise<number> {
  return trimBefore(redis, stream, await deliveryCut(redis, stream));
}
