/**
 * Issue 10 item 10 with real processes: a redis-server whose default user is off and which has
 * one ACL user per service, with the least-privilege rules docs/security.md gives. The
 * scheduler, the worker and the estimator each connect as their own user through
 * REDIS_USERNAME/REDIS_PASSWORD (redisConnectionOptions, the one options builder) and a workflow
 * runs end to end; a wrong password stops a service at start-up with a clear error; a TLS file
 * that cannot be read stops it naming the variable.
 */
import { join } from 'node:path';
import { type RedisHandle, type ServiceProcess, startProcess, startRedis } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eagerTenant, http, type Stack, startStack, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

const ESTIMATOR_MAIN = join(import.meta.dirname, '..', '..', 'services', 'estimator', 'dist', 'main.js');
const WORKER_MAIN = join(import.meta.dirname, '..', '..', 'services', 'worker', 'dist', 'main.js');
const ADMIN_PW = 'acl-test-admin-pw';

/** The rules of docs/security.md ("Redis: TLS and ACL users") for key prefix `p`. */
function aclRules(p: string): Record<'scheduler' | 'worker' | 'estimator', string[]> {
  const common = ['+@read', '+@write', '+@scripting', '+@stream', '+@pubsub', '+@connection', '-@dangerous', '+info', '+time'];
  return {
    scheduler: [`~${p}:*`, `~{${p}:q}:*`, `&${p}:*`, ...common, '+@transaction'],
    worker: [`~${p}:*`, `~{${p}:q}:*`, `&${p}:*`, ...common, '+@transaction'],
    estimator: [`~${p}:*`, `&${p}:*`, ...common],
  };
}

describe('issue 10 item 10: each service as its own Redis ACL user', () => {
  let redis: RedisHandle | undefined;
  let stack: Stack | undefined;
  let estimator: ServiceProcess | undefined;
  let plainUrl: string;

  beforeAll(async () => {
    redis = await startRedis();
    plainUrl = redis.url;
    const admin = new Redis(redis.url);
    const prefix = `aclt${process.pid}`;
    try {
      await admin.call('ACL', 'SETUSER', 'test-admin', 'on', `>${ADMIN_PW}`, '~*', '&*', '+@all');
      for (const [svc, rules] of Object.entries(aclRules(prefix)))
        await admin.call('ACL', 'SETUSER', `gambit-${svc}`, 'on', `>pw-${svc}`, ...rules);
      await admin.call('ACL', 'SETUSER', 'default', 'off');
    } finally {
      admin.disconnect();
    }
    const svcEnv = (svc: string) => ({ REDIS_URL: plainUrl, REDIS_USERNAME: `gambit-${svc}`, REDIS_PASSWORD: `pw-${svc}`, GAMBIT_PREFIX: prefix });
    // The stack's own test client is the admin; the services override REDIS_URL and use their users.
    stack = await startStack(
      { kind: 'single', url: `redis://test-admin:${ADMIN_PW}@127.0.0.1:${redis.port}` },
      { label: 'acl', schedulers: 1, workers: 1, schedulerEnv: { ...svcEnv('scheduler'), REQUIRE_ESTIMATOR_HEARTBEAT: 'true' }, workerEnv: svcEnv('worker') },
    );
    estimator = startProcess('estimator', ESTIMATOR_MAIN, [], { ...svcEnv('estimator'), ESTIMATOR_HEARTBEAT_MS: '200', ESTIMATOR_BLOCK_MS: '100' });
    await estimator.waitForLine((l) => l.includes('"estimator ready"'), 30_000);
  }, 120_000);

  afterAll(async () => {
    await estimator?.stop();
    await stack?.stop();
    await redis?.stop();
  });

  it('a workflow runs end to end; the estimator heartbeat reaches the scheduler; the default user is refused', async () => {
    const url = (stack as Stack).urls[0] as string;
    const deadline = Date.now() + 20_000;
    while ((await http(url, 'GET', '/healthz')).body.heartbeatFresh !== true) {
      if (Date.now() > deadline) throw new Error('estimator heartbeat never seen');
      await new Promise((r) => setTimeout(r, 100));
    }
    const tenant = await eagerTenant(url, 'acl');
    const r = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('aclwf', 'billing', 'billing', { routerTtftMs: 100, downTtftMs: 100 }), inputs: { q: 'x' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const view = await waitForRun(url, tenant, r.body.runId as string);
    expect(view.status).toBe('succeeded');
    expect(view.nodes.answer.output).toBe('answer for billing');
    const anon = new Redis(plainUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anon.on('error', () => {});
    try {
      await anon.connect().catch(() => {});
      await expect(anon.get('x')).rejects.toThrow(/NOAUTH|Authentication required|closed/i);
    } finally {
      anon.disconnect();
    }
  });

  it('a wrong password stops the worker at start-up with a clear error', async () => {
    const w = startProcess('worker-badpw', WORKER_MAIN, [], { REDIS_URL: plainUrl, REDIS_USERNAME: 'gambit-worker', REDIS_PASSWORD: 'wrong', GAMBIT_PREFIX: 'aclbad', LOG_LEVEL: 'info' });
    try {
      const line = await w.waitForLine((l) => l.includes('refused the credentials'), 30_000);
      expect(line).toMatch(/Redis connection redis refused the credentials at start-up \(check REDIS_USERNAME, REDIS_PASSWORD and REDIS_URL\): (NOAUTH|WRONGPASS)/);
      expect(await w.exited()).not.toBe(0);
    } finally {
      await w.stop();
    }
  }, 60_000);

  it('an unreadable TLS file stops the estimator at start-up naming the variable', async () => {
    const e = startProcess('estimator-badtls', ESTIMATOR_MAIN, [], { REDIS_URL: plainUrl, REDIS_TLS_CA_FILE: '/nonexistent/ca.pem', GAMBIT_PREFIX: 'aclbad' });
    try {
      const line = await e.waitForLine((l) => l.includes('REDIS_TLS_CA_FILE'), 30_000);
      expect(line).toMatch(/REDIS_TLS_CA_FILE: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
      expect(await e.exited()).not.toBe(0);
    } finally {
      await e.stop();
    }
  }, 60_000);
});
