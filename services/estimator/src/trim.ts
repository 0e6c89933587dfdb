/**
 * Trims the outcomes stream of entries every consumer group has acknowledged, so the stream does
 * not grow forever. The cut (MINID) is, over all groups, the smallest of each group's oldest
 * pending id and its last-delivered id: nothing a group has not yet read or acked is removed.
 */
import type { RedisLike } from '@gambit/shared/redis';

function cmpId(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

/** Returns the number of entries removed (0 when there is no group yet). */
export async function trimAcknowledged(redis: RedisLike, stream: string): Promise<number> {
  let groups: unknown[][];
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  } catch {
    return 0; // no stream yet
  }
  if (groups.length === 0) return 0;
  let cut: string | undefined;
  for (const g of groups) {
    const name = String(g[g.indexOf('name') + 1]);
    const lastDelivered = String(g[g.indexOf('last-delivered-id') + 1]);
    const summary = (await redis.xpending(stream, name)) as [number, string | null, string | null, unknown];
    const oldestPending = summary[1];
    const groupCut = oldestPending !== null && cmpId(oldestPending, lastDelivered) < 0 ? oldestPending : lastDelivered;
    if (cut === undefined || cmpId(groupCut, cut) < 0) cut = groupCut;
  }
  if (cut === undefined || cut === '0-0') return 0;
  // MINID keeps entries with id >= cut: the oldest pending entry (or the next unread one) stays.
  return Number(await redis.xtrim(stream, 'MINID', cut));
}
