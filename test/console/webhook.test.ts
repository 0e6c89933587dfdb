/**
 * The run-end webhook and the API's machine-readable description (issue 12 item 3), on real
 * processes: a delivery is signed (HMAC-SHA256 of `<t>.<body>`), retried with backoff while the
 * receiver fails, logged per try, and durable: queued in Redis, it is delivered by another
 * scheduler after the one that queued it is gone. `/openapi.json` is generated from the routes'
 * zod schemas; `/v1/schemas/workflow.json` is the workflow definition's JSON Schema.
 * Deliveries go through the outbound guard (issue 10 item 6): the receivers here listen on
 * 127.0.0.1 at ports the scheduler is told to trust (OUTBOUND_TRUSTED_ORIGINS); an untrusted
 * loopback or metadata URL is refused when set (422 naming `url`) and, when the name only
 * resolves to such an address, at delivery time (a failed try with the reason, not retried).
 */
import { createHmac } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { cancelRun, defineRunScripts } from '@gambit/shared/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, submitRun, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A receiver answering `statuses` in turn (then 200), recording every request. */
async function receiver(statuses: number[], port = 0, headers: Record<string, string> = {}): Promise<{ server: Server; url: string; got: Received[] }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(statuses.shift() ?? 200, headers).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

function verify(secret: string, r: Received): void {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers['gambit-signature']));
  expect(m, String(r.headers['gambit-signature'])).not.toBeNull();
  const expected = createHmac('sha256', secret).update(`${m?.[1]}.${r.body}`).digest('hex');
  expect(m?.[2]).toBe(expected);
}

async function until<T>(f: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(v).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A port free now (listened on, then closed). */
async function freePort(): Promise<number> {
  const probe = await receiver([]);
  const port = (probe.server.address() as AddressInfo).port;
  await close(probe.server);
  return port;
}

describe('webhooks and API description', () => {
  let stack: Stack;
  let url: string;
  /** Receiver ports the scheduler trusts (OUTBOUND_TRUSTED_ORIGINS). */
  let ports: number[];
  beforeAll(async () => {
    ports = [await freePort(), await freePort(), await freePort()];
    const trusted = ports.map((p) => `http://127.0.0.1:${p}`).join(',');
    stack = await startStack(
      { kind: 'single', url: inject('redisUrl') },
      { label: 'webhook', schedulers: 1, workers: 1, schedulerEnv: { WEBHOOK_BACKOFF_MS: '150', WEBHOOK_ATTEMPTS: '6', WEBHOOK_TIMEOUT_MS: '2000', OUTBOUND_TRUSTED_ORIGINS: trusted } },
    );
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('/openapi.json describes every route from its zod schemas; /v1/schemas/workflow.json is the workflow JSON Schema', async () => {
    const r = await http<RunView>(url, 'GET', '/openapi.json', undefined, { auth: null });
    expect(r.status).toBe(200);
    const doc = r.body;
    expect(doc.openapi, JSON.stringify(Object.keys(doc.paths ?? {}))).toBe('3.1.0');
    expect(Object.keys(doc.paths), JSON.stringify(Object.keys(doc.paths))).toContain('/v1/runs');
    for (const [path, method] of [
      ['/v1/runs', 'post'],
      ['/v1/runs', 'get'],
      ['/v1/runs/{tenant}/{runId}', 'get'],
      ['/v1/runs/{tenant}/{runId}/events', 'get'],
      ['/v1/classes', 'get'],
      ['/v1/kills', 'get'],
      ['/v1/kill', 'post'],
      ['/v1/tenants/{tenant}/webhook', 'put'],
    ] as const)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    const submit = doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema;
    expect(submit.required).toEqual(expect.arrayContaining(['workflow']));
    expect(Object.keys(submit.properties)).toEqual(expect.arrayContaining(['tenant', 'workflow', 'inputs', 'runId']));
    expect(submit.properties.alpha).toMatchObject({ type: 'number', minimum: 0, maximum: 1 });
    const listParams = doc.paths['/v1/runs'].get.parameters.map((p: RunView) => `${p.in}:${p.name}`);
    expect(listParams).toEqual(expect.arrayContaining(['query:tenant', 'query:status', 'query:cursor', 'query:limit']));
    const kill = doc.paths['/v1/kill'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(kill.properties)).toEqual(expect.arrayContaining(['scope', 'classId', 'reason', 'owner', 'expiresInSec']));
    expect(doc.paths['/openapi.json']).toBeUndefined();

    const wf = await http<RunView>(url, 'GET', '/v1/schemas/workflow.json', undefined, { auth: null });
    expect(wf.status).toBe(200);
    expect(wf.body.$schema).toContain('json-schema.org');
    expect(wf.body.required).toEqual(expect.arrayContaining(['name', 'nodes']));
    expect(JSON.stringify(wf.body.properties.nodes)).toContain('"llm"');
    expect(JSON.stringify(wf.body.properties.edges)).toContain('router_k_way');
  });

  it('a run end is POSTed signed, retried with backoff while the receiver fails, and every try is logged', async () => {
    const tenant = await eagerTenant(url, 'hook');
    const rx = await receiver([500, 503], ports[0]);
    try {
      const secret = 'whsec-test-0123456789abcdef';
      const bad = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: 'ftp://example/x', secret });
      expect(bad.status).toBe(400);
      expect(bad.body.error.field).toBe('url');
      const short = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: rx.url, secret: 'short' });
      expect(short.body.error.field).toBe('secret');
      expect((await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: rx.url, secret })).status).toBe(200);
      const shown = await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/webhook`);
      expect(shown.body.webhook.url).toBe(rx.url);
      expect(JSON.stringify(shown.body)).not.toContain(secret);

      const s = await submitRun(url, { tenant, workflow: routerChain('hookwf', 'billing', 'billing', { routerTtftMs: 100, downTtftMs: 100 }), inputs: { q: 'h' } });
      const runId = s.body.runId as string;
      const view = await waitForRun(url, tenant, runId);
      await until(() => rx.got.length, (n) => n >= 3);
      await new Promise((r) => setTimeout(r, 500));
      expect(rx.got).toHaveLength(3); // two failures, one success, nothing after it
      for (const g of rx.got) verify(secret, g);
      const bodies = rx.got.map((g) => JSON.parse(g.body) as RunView);
      expect(bodies.map((b) => b.attempt)).toEqual([1, 2, 3]);
      expect(bodies[2]).toMatchObject({ type: 'run.ended', tenant, runId, workflow: 'hookwf', status: 'succeeded', finishedAtMs: view.finishedAtMs });
      expect(new Set(rx.got.map((g) => g.headers['gambit-delivery'])).size).toBe(1);
      // Exponential backoff: at least 150 ms before the first retry, 300 ms before the second.
      const at = bodies.map((_, i) => Number(/^t=(\d+)/.exec(String(rx.got[i]?.headers['gambit-signature']))?.[1]));
      expect((at[1] as number) - (at[0] as number)).toBeGreaterThanOrEqual(140);
      expect((at[2] as number) - (at[1] as number)).toBeGreaterThanOrEqual(290);
      const log = await until(
        async () => (await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/webhook/deliveries`)).body.deliveries as RunView[],
        (d) => d.length === 3,
      );
      expect(log.map((d) => [d.attempt, d.ok, d.status])).toEqual([
        [3, true, 200],
        [2, false, 503],
        [1, false, 500],
      ]);
    } finally {
      await close(rx.server);
    }
  });

  it('issue 10 item 6: an untrusted loopback or metadata URL is refused when set (422 url) and at delivery (logged, not retried)', async () => {
    const tenant = await eagerTenant(url, 'ssrf');
    const secret = 'whsec-ssrf-0123456789abcdef';
    const untrusted = await freePort(); // not in OUTBOUND_TRUSTED_ORIGINS
    for (const bad of [`http://127.0.0.1:${untrusted}/hook`, 'http://169.254.169.254/latest/meta-data/', 'http://[::ffff:127.0.0.1]/x', 'http://localhost/x', 'https://user:pw@example.com/x']) {
      const r = await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: bad, secret });
      expect(r.status, bad).toBe(422);
      expect(r.body.error, bad).toMatchObject({ code: 'WEBHOOK_URL_REFUSED', field: 'url' });
    }
    expect((await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/webhook`)).body.webhook).toBeNull();

    // A host name that only resolves to a loopback/private address passes the check at PUT time
    // (no DNS then) and is refused at delivery by the guarded connect lookup.
    const name = hostname();
    const resolved = await lookup(name);
    expect(resolved.address, `${name} must resolve to a loopback or private address on this machine`).toMatch(/^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$)/);
    const rx = await receiver([], untrusted);
    try {
      expect((await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: `http://${name}:${untrusted}/hook`, secret })).status).toBe(200);
      const s = await submitRun(url, { tenant, workflow: routerChain('ssrfwf', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 }), inputs: { q: 's' } });
      const runId = s.body.runId as string;
      await waitForRun(url, tenant, runId);
      const log = await until(
        async () => (await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/webhook/deliveries`)).body.deliveries as RunView[],
        (d) => d.length >= 1,
      );
      await new Promise((r) => setTimeout(r, 600)); // longer than the first backoff: no retry comes
      const after = (await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/webhook/deliveries`)).body.deliveries as RunView[];
      expect(after).toHaveLength(1);
      expect(log[0]).toMatchObject({ runId, attempt: 1, ok: false, status: null, gaveUp: true });
      expect(log[0]?.error).toContain('outbound request refused');
      expect(log[0]?.error).toContain(resolved.address);
      expect(rx.got).toHaveLength(0);
    } finally {
      await close(rx.server);
    }
  });

  it('issue 10 item 6: a redirect answer to a delivery is not followed (a POST is never redirected)', async () => {
    const tenant = await eagerTenant(url, 'redir');
    const secret = 'whsec-redir-0123456789abcdef';
    const rx = await receiver([302], ports[2], { location: 'http://169.254.169.254/latest/meta-data/' });
    try {
      expect((await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: rx.url, secret })).status).toBe(200);
      const s = await submitRun(url, { tenant, workflow: routerChain('redirwf', 'billing', 'billing', { routerTtftMs: 50, downTtftMs: 50 }), inputs: { q: 'r' } });
      const runId = s.body.runId as string;
      await waitForRun(url, tenant, runId);
      const log = await until(
        async () => (await http<RunView>(url, 'GET', `/v1/tenants/${tenant}/webhook/deliveries`)).body.deliveries as RunView[],
        (d) => d.length >= 1,
      );
      await new Promise((r) => setTimeout(r, 600));
      expect(rx.got).toHaveLength(1);
      expect(log[0]).toMatchObject({ runId, ok: false, gaveUp: true });
      expect(log[0]?.error).toContain('redirect of a POST');
    } finally {
      await close(rx.server);
    }
  });

  // Last: it stops the first scheduler.
  it('durable: a run ended by a scheduler that died before queueing its webhook is still delivered (the ended pass queues it)', async () => {
    const tenant = await eagerTenant(url, 'endgap');
    const rx = await receiver([], ports[2] as number);
    try {
      const secret = 'whsec-endgap-0123456789';
      expect((await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: rx.url, secret })).status).toBe(200);
      // A run whose first node takes a minute: it is still running when the test ends it.
      const s = await submitRun(url, { tenant, workflow: routerChain('endgapwf', 'billing', 'billing', { routerTtftMs: 60_000, downTtftMs: 100 }), inputs: { q: 'e' } });
      expect(s.status).toBe(201);
      const runId = s.body.runId as string;
      // What a scheduler does in engine.end, up to the point where it dies: the run-ending script,
      // and nothing after it (no onRunEnd, so no webhook queued by it).
      defineRunScripts(stack.redis);
      const ended = await cancelRun(stack.redis, { prefix: stack.prefix }, { tenant, runId, status: 'cancelled', reason: 'test: the scheduler died right after ending the run', nowMs: Date.now() });
      expect(ended.ended).toBe(true);
      // The run is still in the active index: the recovery sweep kicks it, its ended pass queues
      // the delivery before the run leaves the index.
      const mine = () => rx.got.filter((g) => (JSON.parse(g.body) as { runId?: string }).runId === runId);
      await until(() => mine().length, (n) => n >= 1, 30_000);
      verify(secret, mine()[0] as Received);
      expect(JSON.parse(mine()[0]?.body ?? '{}')).toMatchObject({ tenant, runId, status: 'cancelled' });
      // Once: the run is marked, and later passes do not queue it again.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(mine()).toHaveLength(1);
      expect(await stack.redis.hget(`${stack.prefix}:{run:${tenant}:${runId}}:run`, 'endNotice')).toBe('1');
    } finally {
      await close(rx.server);
    }
  });

  it('durable: a delivery queued by a scheduler that is gone is delivered by another one', async () => {
    const tenant = await eagerTenant(url, 'durable');
    // A (trusted) port nobody listens on yet: the first tries are refused.
    const port = ports[1] as number;
    const secret = 'whsec-durable-0123456789';
    const hookUrl = `http://127.0.0.1:${port}/hook`;
    expect((await http<RunView>(url, 'PUT', `/v1/tenants/${tenant}/webhook`, { url: hookUrl, secret })).status).toBe(200);
    const second = await stack.startScheduler('scheduler-b', { WEBHOOK_BACKOFF_MS: '300', WEBHOOK_ATTEMPTS: '10' });
    const first = stack.schedulers[0];
    const s = await submitRun(url, { tenant, workflow: routerChain('durwf', 'billing', 'billing', { routerTtftMs: 100, downTtftMs: 100 }), inputs: { q: 'd' } });
    const runId = s.body.runId as string;
    await waitForRun(url, tenant, runId);
    await until(
      async () => (await http<RunView>(second.url, 'GET', `/v1/tenants/${tenant}/webhook/deliveries`)).body.deliveries as RunView[],
      (d) => d.length >= 1 && d.every((x) => !x.ok),
    );
    await first?.stop(8_000);
    const rx = await receiver([], port);
    try {
      await until(() => rx.got.length, (n) => n >= 1, 30_000);
      verify(secret, rx.got[0] as Received);
      expect(JSON.parse(rx.got[0]?.body ?? '{}')).toMatchObject({ tenant, runId, status: 'succeeded' });
      const log = (await http<RunView>(second.url, 'GET', `/v1/tenants/${tenant}/webhook/deliveries`)).body.deliveries as RunView[];
      expect(log[0]).toMatchObject({ ok: true, status: 200, runId });
    } finally {
      await close(rx.server);
    }
  });
});
