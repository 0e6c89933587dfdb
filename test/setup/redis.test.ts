import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniquePrefix } from '@gambit/testkit';

describe('test harness', () => {
  const redis = new Redis(inject('redisUrl'));
  afterAll(async () => {
    await redis.quit();
  });
  it('talks to a real redis-server started by the global setup', async () => {
    const key = `${uniquePrefix('harness')}:k`;
    await redis.set(key, 'v');
    expect(await redis.get(key)).toBe('v');
    const info = await redis.info('server');
    expect(info).toMatch(/redis_version:/);
  });
});
