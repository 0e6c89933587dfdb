/**
 * Issue 10 item 6 "done when": a corpus of URL forms and redirect chains aimed at a loopback
 * listener, through every tool that makes a request (http_get, http_post) in a real worker
 * process: 0 connections reach the listener, and each attempt fails with the guard's reason.
 * The redirect chains start at an origin the operator trusts (a loopback redirector named in
 * OUTBOUND_TRUSTED_ORIGINS), so the first hop is allowed and the hop to the target is refused.
 * The address ranges that no test may send traffic to (private, CGNAT, metadata, multicast) are
 * checked on the guard's pure address check only.
 */
import { lookup } from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addressRefusal, hostAllowed } from '../../services/worker/src/outbound.js';
import { opQueues, readRecord, startWorker, submit, toolJob, waitFor } from '../worker/helpers.js';

describe('outbound guard: SSRF corpus through http_get and http_post (real worker)', () => {
  const redisUrl = inject('redisUrl');
  let redis: Redis;
  let prefix: string;
  let queues: ReturnType<typeof opQueues>;
  let worker: ServiceProcess;
  let target4: Server;
  let target6: Server | undefined;
  let redirector: Server;
  let port = 0;
  let rport = 0;
  let connections = 0;
  let served = 0;
  /** A DNS name (not `localhost`) that resolves to loopback here, to exercise the connect-time check. */
  let loopbackName: string | undefined;

  beforeAll(async () => {
    const onConn = () => {
      connections++;
    };
    target4 = createServer((_req, res) => res.end('secret'));
    target4.on('connection', onConn);
    await new Promise<void>((r) => target4.listen(0, '127.0.0.1', r));
    port = (target4.address() as AddressInfo).port;
    // The same port on IPv6 loopback, so v6 forms would be counted too.
    target6 = createServer((_req, res) => res.end('secret'));
    target6.on('connection', onConn);
    await new Promise<void>((r, j) => {
      target6?.once('error', j);
      target6?.listen(port, '::1', r);
    }).catch(() => {
      target6 = undefined;
    });
    // A trusted redirector: /to?u=<url> answers 302 to u; /chain/N?u= redirects N more times first.
    redirector = createServer((req, res) => {
      served++;
      const u = new URL(req.url ?? '/', 'http://x');
      const n = Number(u.pathname.split('/')[2] ?? '0');
      const next = u.pathname.startsWith('/chain/') && n > 0 ? `/chain/${n - 1}?u=${encodeURIComponent(u.searchParams.get('u') ?? '')}` : (u.searchParams.get('u') ?? '/');
      res.writeHead(302, { location: next }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    rport = (redirector.address() as AddressInfo).port;

    const hn = hostname();
    if ((await lookup(hn).catch(() => undefined))?.address.startsWith('127.') === true) loopbackName = hn;
    redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    prefix = uniquePrefix('ssrf');
    queues = opQueues(redis, { prefix });
    worker = await startWorker({ redisUrl, prefix, env: { OUTBOUND_TRUSTED_ORIGINS: `http://127.0.0.1:${rport}` } });
  }, 60_000);

  afterAll(async () => {
    await worker?.stop(5_000);
    await queues?.close();
    await redis?.quit();
    for (const s of [target4, target6, redirector]) if (s !== undefined) await new Promise<void>((r) => s.close(() => r()));
  });

  const corpus = (): string[] => {
    const p = port;
    const direct = [
      `http://127.0.0.1:${p}/`,
      `http://localhost:${p}/`,
      `http://LocalHost:${p}/`,
      `http://localhost.:${p}/`,
      `http://sub.localhost:${p}/`,
      `http://2130706433:${p}/`,
      `http://0x7f000001:${p}/`,
      `http://0x7f.0x0.0x0.0x1:${p}/`,
      `http://0177.0.0.1:${p}/`,
      `http://017700000001:${p}/`,
      `http://127.1:${p}/`,
      `http://127.0.1:${p}/`,
      `http://127.255.255.254:${p}/`,
      `http://0.0.0.0:${p}/`,
      `http://0:${p}/`,
      `http://[::1]:${p}/`,
      `http://[::]:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://[::ffff:7f00:1]:${p}/`,
      `http://[0:0:0:0:0:ffff:127.0.0.1]:${p}/`,
      `http://[::127.0.0.1]:${p}/`,
      `http://[64:ff9b::127.0.0.1]:${p}/`,
      `http://user:pass@127.0.0.1:${p}/`,
      `https://127.0.0.1:${p}/`,
    ];
    const via = (u: string) => `http://127.0.0.1:${rport}/to?u=${encodeURIComponent(u)}`;
    const redirects = [
      via(`http://127.0.0.1:${p}/`),
      via(`http://[::1]:${p}/`),
      via(`http://2130706433:${p}/`),
      via(`http://localhost:${p}/`),
      via(`/to?u=${encodeURIComponent(`http://127.1:${p}/`)}`),
      `http://127.0.0.1:${rport}/chain/3?u=${encodeURIComponent(`http://0.0.0.0:${p}/`)}`,
      `http://127.0.0.1:${rport}/chain/9?u=${encodeURIComponent(`http://127.0.0.1:${p}/`)}`,
    ];
    const names = loopbackName === undefined ? [] : [`http://${loopbackName}:${p}/`, via(`http://${loopbackName}:${p}/`)];
    return [...direct, ...redirects, ...names];
  };

  it('0 connections reach the loopback listener from any URL form or redirect chain', async () => {
    const urls = corpus();
    expect(urls.length).toBeGreaterThanOrEqual(20);
    const jobs: Array<{ runId: string; attemptId: string; url: string; tool: string }> = [];
    urls.forEach((url, i) => {
      jobs.push({ runId: `g${i}`, attemptId: 'a1', url, tool: 'http_get' });
      jobs.push({ runId: `p${i}`, attemptId: 'a1', url, tool: 'http_post' });
    });
    for (const j of jobs)
      await submit(redis, { prefix }, queues, toolJob({ tenant: 'acme', runId: j.runId, nodeId: 'h', attemptId: j.attemptId, tool: j.tool, args: j.tool === 'http_get' ? { url: j.url } : { url: j.url, body: '{}' }, effects: j.tool === 'http_get' ? 'none' : 'irreversible' }));
    for (const j of jobs) {
      const rec = await waitFor(() => readRecord(redis, { prefix }, 'acme', j.runId, j.attemptId), (r) => r.status === 'succeeded' || r.status === 'failed', 30_000, `${j.tool} ${j.url}`);
      expect(rec.status, `${j.tool} ${j.url}: ${rec.output ?? ''}`).toBe('failed');
      expect(rec.error, `${j.tool} ${j.url}`).toMatch(/outbound request refused|must be an absolute URL|must be http or https/);
    }
    expect(connections).toBe(0);
    // The redirector (trusted) was reached: the chains were really followed up to the refused hop.
    expect(served).toBeGreaterThan(0);
  }, 120_000);

  it('the address check refuses private, CGNAT, metadata, multicast and reserved ranges; public addresses pass', () => {
    for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.169.254', '224.0.0.1', '255.255.255.255', '198.18.0.1', 'fd00:ec2::254', 'fe80::1', 'ff02::1', '::ffff:10.0.0.1', '64:ff9b::a9fe:a9fe', '::ffff:a9fe:a9fe'])
      expect(addressRefusal(ip), ip).toBeDefined();
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '172.32.0.1', '100.128.0.1']) expect(addressRefusal(ip), ip).toBeUndefined();
    expect(hostAllowed('api.example.com', ['*.example.com'])).toBe(true);
    expect(hostAllowed('example.com.evil.io', ['example.com'])).toBe(false);
    expect(hostAllowed('evilexample.com', ['*.example.com'])).toBe(false);
  });

  it("a tenant's allow-list: hosts not on it are refused before any connection", async () => {
    await redis.set(`${prefix}:{tenant:listed}:limits`, JSON.stringify({ outboundAllowHosts: ['api.example.com'] }));
    await submit(redis, { prefix }, queues, toolJob({ tenant: 'listed', runId: 'al', nodeId: 'h', attemptId: 'a1', tool: 'http_get', args: { url: `http://127.0.0.1:${rport}/to?u=x` }, effects: 'none' }));
    const before = served;
    const rec = await waitFor(() => readRecord(redis, { prefix }, 'listed', 'al', 'a1'), (r) => r.status === 'failed' || r.status === 'succeeded', 20_000, 'allow-list');
    expect(rec.status).toBe('failed');
    expect(rec.error).toMatch(/not on the tenant's allow-list/);
    // Even the trusted origin is not reachable for a tenant whose list leaves it out.
    expect(served).toBe(before);
  });
});
