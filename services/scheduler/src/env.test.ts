import { describe, expect, it } from 'vitest';
import { clusterNodes, knownTools, loadEnv } from './env.js';

/** Issue 10: the scheduler refuses to start without its two key secrets; every case below sets them. */
const SECRETS = { GAMBIT_ADMIN_KEY: 'a'.repeat(32), GAMBIT_KEY_HMAC_SECRET: 'h'.repeat(32) };

describe('scheduler environment', () => {
  it('needs a Redis, fills defaults, and treats empty strings as unset', () => {
    expect(() => loadEnv({ ...SECRETS })).toThrow(/REDIS_URL/);
    expect(() => loadEnv({ REDIS_URL: 'redis://x:1' })).toThrow(/GAMBIT_ADMIN_KEY.*GAMBIT_KEY_HMAC_SECRET/);
    expect(() => loadEnv({ ...SECRETS, REDIS_URL: 'redis://x:1', GAMBIT_ADMIN_KEY: 'short' })).toThrow(
      /GAMBIT_ADMIN_KEY: must be at least 32 characters/,
    );
    const env = loadEnv({ ...SECRETS, REDIS_URL: 'redis://127.0.0.1:1', PORT: '0', DEFAULT_ALPHA: '', REQUIRE_ESTIMATOR_HEARTBEAT: 'false' });
    expect(env).toMatchObject({ PORT: 0, DEFAULT_ALPHA: 0.5, GAMBIT_PREFIX: 'gambit', REQUIRE_ESTIMATOR_HEARTBEAT: false });
    expect(clusterNodes(env)).toBeUndefined();
    expect(knownTools(env)).toBeUndefined();
    expect([...(knownTools(loadEnv({ ...SECRETS, REDIS_URL: 'redis://x:1', KNOWN_TOOLS: 'echo, send_message,,' })) ?? [])]).toEqual(['echo', 'send_message']);
  });

  it('parses cluster seeds and names bad variables', () => {
    const env = loadEnv({ ...SECRETS, REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001' });
    expect(clusterNodes(env)).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
    ]);
    expect(() => loadEnv({ ...SECRETS, REDIS_URL: 'redis://x:1', DEFAULT_ALPHA: '2' })).toThrow(/DEFAULT_ALPHA/);
    expect(() => loadEnv({ ...SECRETS, REDIS_URL: 'redis://x:1', GAMBIT_PRICES: '{not json' })).toThrow(/GAMBIT_PRICES/);
  });
});
