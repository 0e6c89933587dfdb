/**
 * Vitest global setup: starts one real redis-server on a free port for the whole run and stops
 * it afterwards. Tests read its URL with `inject('redisUrl')` and isolate themselves with a
 * unique key prefix (never FLUSHALL).
 */
import type { TestProject } from 'vitest/node';
import { startRedis } from '@gambit/testkit';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = await startRedis();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
  };
}
