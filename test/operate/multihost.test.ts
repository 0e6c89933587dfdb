/**
 * The multi-machine shape without a Docker engine (issue 12 item 5): Redis, two schedulers, three
 * workers and an estimator, each a separate host in its own network namespace with its own
 * address in 10.231.0.0/16 (@gambit/testkit createNetwork), started with the environment the Kubernetes
 * manifests give their containers (infra/k8s: ConfigMap, Secret, each Deployment's env, pod names
 * as ids). Only addresses differ: Redis's host in REDIS_URL and the collector endpoint, which
 * point at this network's hosts. Workflows submitted to either scheduler run across the workers
 * and are read back through the other scheduler; the estimator scores them; traces reach the
 * collector over the network. Every namespace is deleted afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Network, ServiceProcess } from '@gambit/testkit';
import { createNetwork, redisServerBinary } from '@gambit/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eagerTenant, getRun, type RunView, registerAdminKey, SCHEDULER_MAIN, submitRun, WORKER_MAIN, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';
import { ESTIMATOR_MAIN } from '../estimator/procs.js';
import { scrape, sum, until } from './helpers.js';
import { containerEnv, find, k8sDocs, type Service } from './manifests.js';

const MAIN: Record<Service, string> = { scheduler: SCHEDULER_MAIN, worker: WORKER_MAIN, estimator: ESTIMATOR_MAIN };
const PODS: Array<{ host: string; service: Service }> = [
  { host: 'scheduler-1', service: 'scheduler' },
  { host: 'scheduler-2', service: 'scheduler' },
  { host: 'worker-1', service: 'worker' },
  { host: 'worker-2', service: 'worker' },
  { host: 'worker-3', service: 'worker' },
  { host: 'estimator', service: 'estimator' },
];

describe('multi-host: Redis, 2 schedulers, 3 workers and an estimator as separate hosts (network namespaces)', () => {
  const docs = k8sDocs();
  let net: Network | undefined;
  const procs: ServiceProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'gambit-netns-redis-'));
  let collector: Server | undefined;
  const traceSources = new Set<string>();
  const addr = (host: string) => net?.hosts.get(host)?.address as string;

  beforeAll(async () => {
    net = await createNetwork(['redis', ...PODS.map((p) => p.host)], { prefix: 'w1op', subnet: '10.231', user: 'the multi-host test' });
    // The OTLP endpoint of the manifests, played by this server on the test's own address.
    collector = createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/v1/traces') traceSources.add(req.socket.remoteAddress ?? '');
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
    });
    await new Promise<void>((resolve) => collector?.listen(4318, net?.gateway, resolve));
    // Redis as the manifests run it: AOF everysec, a password (the one in secret.yaml).
    const password = find(docs, 'Secret', 'redis-auth').stringData.password as string;
    const redis = net.start('redis', 'redis', [redisServerBinary(), '--bind', addr('redis'), '--port', '6379', '--requirepass', password, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--dir', dataDir], {});
    procs.push(redis);
    await redis.waitForLine((l) => l.includes('Ready to accept connections'), 20_000);
    const redisUrl = new URL(find(docs, 'Secret', 'gambit-secrets').stringData.REDIS_URL as string);
    redisUrl.hostname = addr('redis');
    for (const p of PODS) {
      const env = containerEnv(docs, p.service, `gambit-${p.host}`, { REDIS_URL: redisUrl.toString(), OTEL_EXPORTER_OTLP_ENDPOINT: `http://${net.gateway}:4318` });
      procs.push(net.start(p.host, p.host, [process.execPath, MAIN[p.service]], env));
    }
    await Promise.all(
      PODS.map((p, i) =>
        until(`${p.host} ready`, async () => {
          const r = await fetch(`http://${addr(p.host)}:9464/readyz`, { signal: AbortSignal.timeout(2_000) });
          return r.status === 200 ? true : undefined;
        }, 60_000, 250).catch((err: unknown) => {
          // Say why: the host's own last lines (a service that exited, or one still waiting).
          throw new Error(`${String(err)}\n${p.host} last lines:\n${(procs[i + 1]?.lines ?? []).slice(-15).join('\n')}`);
        }),
      ),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop(8_000)));
    await new Promise<void>((resolve) => (collector === undefined ? resolve() : collector.close(() => resolve())));
    await net?.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    if (net !== undefined) expect(await net.namespaces()).toEqual([]);
  });

  it('runs workflows across hosts with the manifests’ environment', async () => {
    const [s1, s2] = ['scheduler-1', 'scheduler-2'].map((h) => `http://${addr(h)}:8080`) as [string, string];
    // The operator key the manifests give the schedulers (secret.yaml, gambit-api-keys).
    for (const s of [s1, s2]) registerAdminKey(s, find(docs, 'Secret', 'gambit-api-keys').stringData.GAMBIT_ADMIN_KEY as string);
    // Each service listens where the manifests say, and the schedulers see the estimator's beat
    // (REQUIRE_ESTIMATOR_HEARTBEAT=true in the manifests: no beat, no speculation).
    for (const p of procs.slice(1)) expect(p.lines.some((l) => l.includes('"msg":"ops listening"') && l.includes('"host":"0.0.0.0"') && l.includes('"port":9464'))).toBe(true);
    for (const h of ['scheduler-1', 'scheduler-2'])
      await until(`${h} sees the estimator's heartbeat`, async () => (sum(await scrape(9464, addr(h)), 'gambit_control_heartbeat_fresh') === 1 ? true : undefined), 20_000, 200);

    const tenant = await eagerTenant(s1, 'netns');
    const submitted: Array<{ runId: string; readFrom: string }> = [];
    // Twelve runs whose first nodes overlap (1.5 s each): more operations at once than one
    // worker's 8 slots (worker.yaml), so the fair dispatcher, which hands jobs only to free slots,
    // must use more than one worker; with fewer, one idle worker may take them all, correctly.
    for (let i = 0; i < 12; i++) {
      const [to, readFrom] = i % 2 === 0 ? [s1, s2] : [s2, s1];
      const wf = routerChain(i % 3 === 2 ? 'netmiss' : 'nethit', 'billing', i % 3 === 2 ? 'refund' : 'billing', { routerTtftMs: 1_500, downTtftMs: 600 });
      const r = await submitRun(to, { tenant, workflow: wf, inputs: { q: `q${i}` } });
      expect(r.status).toBe(201);
      submitted.push({ runId: r.body.runId as string, readFrom });
    }
    // Each run is read back through the scheduler it was not submitted to.
    const views: RunView[] = await Promise.all(submitted.map((s) => waitForRun(s.readFrom, tenant, s.runId, 60_000)));
    for (const v of views) expect(v.status).toBe('succeeded');
    const workers = new Set(views.flatMap((v) => Object.values(v.nodes).flatMap((n) => (n as { attempts: Array<{ workerId?: string }> }).attempts.map((a) => a.workerId))));
    workers.delete(undefined);
    expect(workers.size, `workers used: ${[...workers].join(', ')}`).toBeGreaterThanOrEqual(2);
    for (const w of workers) expect(w).toMatch(/^gambit-worker-[123]$/);
    const speculated = views.filter((v) => v.decisions.some((d: { action: string }) => d.action === 'SPECULATE'));
    expect(speculated.length).toBeGreaterThan(0);

    // The estimator, on its own host, scores every outcome the schedulers recorded.
    const outcomes = await until(
      'outcomes recorded',
      async () => {
        const vs = await Promise.all(submitted.map(async (s) => (await getRun(s.readFrom, tenant, s.runId)).body));
        const os = vs.flatMap((v) => v.outcomes as Array<{ kind: string }>);
        return os.some((o) => o.kind === 'hit') && os.some((o) => o.kind === 'miss') ? os : undefined;
      },
      30_000,
      250,
    );
    await until('the estimator applied the outcomes', async () => (sum(await scrape(9464, addr('estimator')), 'gambit_estimator_outcomes_applied_total') >= outcomes.length ? true : undefined), 30_000, 250);

    // Traces crossed the network to the collector the manifests name, from schedulers and workers.
    await until('traces from scheduler and worker hosts', async () => (traceSources.has(addr('scheduler-1')) || traceSources.has(addr('scheduler-2'))) && ['worker-1', 'worker-2', 'worker-3'].some((w) => traceSources.has(addr(w))) ? true : undefined, 30_000, 250);
  }, 120_000);
});
