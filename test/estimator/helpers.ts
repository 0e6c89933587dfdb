/** Shared helpers of the estimator tests: a heartbeat writer and waiting for a condition. */
import type { Redis } from 'ioredis';
import { controlKeys, type KeySpace } from '@gambit/shared/redis';

export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Beats like an estimator would (for tests of the client alone). Returns a stop function. */
export function fakeBeat(redis: Redis, ks: KeySpace, id = 'test-beat', everyMs = 200): () => Promise<void> {
  const key = controlKeys(ks).heartbeat;
  const beat = () => redis.hset(key, id, String(Date.now())).catch(() => undefined);
  void beat();
  const t = setInterval(() => void beat(), everyMs);
  return async () => {
    clearInterval(t);
    await redis.hdel(key, id).catch(() => undefined);
  };
}
