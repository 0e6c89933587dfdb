/** The worker's configuration is parsed once and fails naming the variable (STYLE.md 1, 5). */
import { ValidationError } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { parseEnv } from './env.js';

describe('worker env', () => {
  it('fills defaults: separate authoritative and speculative slots (M10), simulated time scale 1', () => {
    const env = parseEnv({});
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env.GAMBIT_PREFIX).toBe('gambit');
    expect(env.WORKER_CONCURRENCY).toBe(4);
    expect(env.WORKER_SPEC_CONCURRENCY).toBe(2);
    expect(env.GAMBIT_SIM_TIME_SCALE).toBe(1);
    expect(env.WORKER_ID).toMatch(/-\d+$/);
    expect(env.telemetry.traces.exporter).toBe('none');
  });

  it('parses numbers, cluster seeds and JSON prices; empty strings count as unset', () => {
    const env = parseEnv({
      WORKER_CONCURRENCY: '8',
      WORKER_SPEC_CONCURRENCY: '0',
      REDIS_CLUSTER_NODES: '127.0.0.1:7000, 127.0.0.1:7001',
      GAMBIT_PRICES: JSON.stringify({ models: { 'local/llama': { inputPerMTokUsd: 0.1, outputPerMTokUsd: 0.2 } }, toolPrices: { http_get: 0.0001 } }),
      OPENAI_API_KEY: '',
    });
    expect(env.WORKER_CONCURRENCY).toBe(8);
    expect(env.WORKER_SPEC_CONCURRENCY).toBe(0);
    expect(env.REDIS_CLUSTER_NODES).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
    ]);
    expect(env.GAMBIT_PRICES?.toolPrices?.http_get).toBe(0.0001);
    expect(env.OPENAI_API_KEY).toBeUndefined();
  });

  it('names each bad variable', () => {
    let caught: unknown;
    try {
      parseEnv({ WORKER_CONCURRENCY: '0', GAMBIT_PRICES: '{"models":{"m":{"inputPerMTokUsd":-1,"outputPerMTokUsd":1}}}', GAMBIT_PREFIX: 'a{b' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const paths = (caught as ValidationError).issues.map((i) => i.path);
    expect(paths).toContain('env.WORKER_CONCURRENCY');
    expect(paths).toContain('env.GAMBIT_PRICES.models.m.inputPerMTokUsd');
    expect(paths).toContain('env.GAMBIT_PREFIX');
  });
});
