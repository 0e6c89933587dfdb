/**
 * Issue 10 item 10, TLS with real processes: the test makes a CA, a server certificate (for
 * 127.0.0.1) and a client certificate with `openssl`, and starts redis-server with TLS only
 * (`--port 0 --tls-port N`). The scheduler and the worker connect with REDIS_URL=rediss://... and
 * REDIS_TLS_CA_FILE (redisConnectionOptions, the one options builder) and a workflow runs end to
 * end through BullMQ; a BullMQ queue built by the test from the same options works too. Without
 * REDIS_TLS_CA_FILE, or with another CA, a service stops at start-up with an error naming
 * REDIS_TLS_CA_FILE and the certificate error; plain TCP to the TLS port gets nothing. A server
 * that requires client certificates accepts a worker given REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisConnectionOptions } from '@gambit/shared/redis';
import { freePort, type ServiceProcess, startProcess, uniquePrefix } from '@gambit/testkit';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eagerTenant, http, newSecrets, registerAdminKey, SCHEDULER_MAIN, WORKER_MAIN, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

const dir = mkdtempSync(join(tmpdir(), 'gambit-redis-tls-'));
const f = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and `names` certificates signed by it (server: SAN 127.0.0.1 and localhost). */
function makePki(): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=gambit-test-ca');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('other-ca.key'), '-out', f('other-ca.crt'), '-days', '2', '-subj', '/CN=some-other-ca');
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [who, cn] of [
    ['server', 'localhost'],
    ['client', 'gambit-worker'],
  ] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '2', '-extfile', f(`${who}.ext`));
  }
}

interface TlsRedis {
  readonly port: number;
  readonly url: string;
  readonly proc: ChildProcess;
}

/** redis-server with TLS only (no plain port), waited for with a TLS client that trusts the CA. */
async function startTlsRedis(authClients: 'no' | 'yes'): Promise<TlsRedis> {
  const port = await freePort();
  const data = mkdtempSync(join(dir, `redis-${authClients}-`));
  // biome-ignore format: one flag per pair
  const proc = spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'),
    '--tls-auth-clients', authClients, '--save', '', '--appendonly', 'no', '--dir', data,
  ], { stdio: 'ignore' });
  const url = `rediss://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`redis-server (TLS) exited with ${proc.exitCode}`);
    const env = { REDIS_TLS_CA_FILE: f('ca.crt'), ...(authClients === 'yes' ? { REDIS_TLS_CERT_FILE: f('client.crt'), REDIS_TLS_KEY_FILE: f('client.key') } : {}) };
    const c = new Redis(url, redisConnectionOptions(env, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null }));
    c.on('error', () => {});
    try {
      await c.connect();
      if ((await c.ping()) === 'PONG') return { port, url, proc };
    } catch {
      // not listening yet
    } finally {
      c.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server (TLS) on ${port} did not answer within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('issue 10 item 10: Redis over TLS (redis-server --tls-port, real processes)', () => {
  let open: TlsRedis | undefined;
  let mutual: TlsRedis | undefined;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    makePki();
    open = await startTlsRedis('no');
    mutual = await startTlsRedis('yes');
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(8_000)));
    for (const r of [open, mutual]) if (r !== undefined && r.proc.exitCode === null) r.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('scheduler and worker connect with REDIS_TLS_CA_FILE and a workflow runs end to end; BullMQ on redisConnectionOptions works', async () => {
    const r = open as TlsRedis;
    const prefix = uniquePrefix('tls').replace(/:/g, '_');
    const common = { REDIS_URL: r.url, REDIS_TLS_CA_FILE: f('ca.crt'), GAMBIT_PREFIX: prefix, LOG_LEVEL: 'info' };
    const secrets = newSecrets();
    const sched = startProcess('scheduler-tls', SCHEDULER_MAIN, [], { ...common, ...secrets, PORT: '0', REQUIRE_ESTIMATOR_HEARTBEAT: 'false' });
    procs.push(sched);
    const worker = startProcess('worker-tls', WORKER_MAIN, [], { ...common, GAMBIT_SIM_TIME_SCALE: '0.1' });
    procs.push(worker);
    await worker.waitForLine((l) => l.includes('"worker ready"'), 30_000);
    const line = await sched.waitForLine((l) => l.includes('"scheduler listening"'), 30_000);
    const url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
    registerAdminKey(url, secrets.GAMBIT_ADMIN_KEY);

    const tenant = await eagerTenant(url, 'tls');
    const sub = await http(url, 'POST', '/v1/runs', { tenant, workflow: routerChain('tlswf', 'billing', 'billing', { routerTtftMs: 100, downTtftMs: 100 }), inputs: { q: 'x' } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const view = await waitForRun(url, tenant, sub.body.runId as string, 60_000);
    expect(view.status).toBe('succeeded');
    expect(view.nodes.answer?.output).toBe('answer for billing');

    // The options builder and BullMQ, as the services use them, from the test process.
    const conn = new Redis(r.url, redisConnectionOptions({ REDIS_TLS_CA_FILE: f('ca.crt') }, { maxRetriesPerRequest: null }));
    const q = new Queue('tls-probe', { connection: conn, prefix: `{${prefix}:probe}` });
    try {
      await q.add('probe', { hello: 'tls' }, { jobId: 'probe-1' });
      expect((await q.getJob('probe-1'))?.data).toEqual({ hello: 'tls' });
      expect(await q.getJobCounts('waiting')).toEqual({ waiting: 1 });
      // The server has no plain port: every byte went over TLS.
      expect(await conn.config('GET', 'port')).toEqual(['port', '0']);
      expect(await conn.config('GET', 'tls-port')).toEqual(['tls-port', String(r.port)]);
    } finally {
      await q.obliterate({ force: true });
      await q.close();
      conn.disconnect();
    }

    // Plain TCP to the TLS port: the server answers no Redis command.
    const plain = new Redis(`redis://127.0.0.1:${r.port}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3_000, commandTimeout: 3_000 });
    plain.on('error', () => {});
    try {
      await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    } finally {
      plain.disconnect();
    }
  }, 120_000);

  it('without REDIS_TLS_CA_FILE, or with another CA, the worker stops at start-up naming REDIS_TLS_CA_FILE and the certificate error', async () => {
    const r = open as TlsRedis;
    for (const [label, extra, code] of [
      ['no-ca', {}, 'SELF_SIGNED_CERT_IN_CHAIN'],
      ['other-ca', { REDIS_TLS_CA_FILE: f('other-ca.crt') }, 'SELF_SIGNED_CERT_IN_CHAIN'],
    ] as const) {
      const w = startProcess(`worker-${label}`, WORKER_MAIN, [], { REDIS_URL: r.url, GAMBIT_PREFIX: `tlsbad${label.replace('-', '')}`, LOG_LEVEL: 'info', ...extra });
      procs.push(w);
      const failed = await w.waitForLine((l) => l.includes('failed the TLS handshake at start-up'), 30_000);
      expect(failed).toContain('check REDIS_TLS_CA_FILE');
      expect(failed).toContain(code);
      expect(await w.exited()).not.toBe(0);
      expect(w.lines.some((l) => l.includes('"worker ready"'))).toBe(false);
    }
  }, 90_000);

  it('a server that requires client certificates accepts the worker with REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE, and not without', async () => {
    const r = mutual as TlsRedis;
    const base = { REDIS_URL: r.url, REDIS_TLS_CA_FILE: f('ca.crt'), LOG_LEVEL: 'info' };
    const good = startProcess('worker-mtls', WORKER_MAIN, [], { ...base, GAMBIT_PREFIX: 'mtlsgood', REDIS_TLS_CERT_FILE: f('client.crt'), REDIS_TLS_KEY_FILE: f('client.key') });
    procs.push(good);
    await good.waitForLine((l) => l.includes('"worker ready"'), 30_000);

    const bare = startProcess('worker-mtls-nocert', WORKER_MAIN, [], { ...base, GAMBIT_PREFIX: 'mtlsbare' });
    procs.push(bare);
    // Three failed attempts (one a second) and still not ready: the server closes the connection.
    await bare.waitForLine((l) => l.includes('"msg":"waiting for redis"') && l.includes('"attempt":3'), 30_000);
    expect(bare.lines.some((l) => l.includes('"worker ready"'))).toBe(false);
  }, 90_000);
});
