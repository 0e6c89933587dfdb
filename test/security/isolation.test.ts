/**
 * Issue 10 item 1-2 "done when": every endpoint × {own key, another tenant's key, no key, revoked
 * key} against a real scheduler process: 0 cross-tenant reads or writes, 0 unauthenticated
 * successes. Another tenant's resources answer 404 exactly as unknown ones do (tenant existence
 * is not revealed); operator-only operations answer 403 to a tenant key. Run ids and workflow
 * names are scoped to the tenant. Issue 11 D4: router-level errors answer in the one error shape.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { newTenant, type Stack, startStack, tenantKey } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: bodies are checked field by field
  body: any;
  headers: Headers;
}

async function call(url: string, method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const h: Record<string, string> = { ...headers };
  if (key !== undefined) h.authorization = `Bearer ${key}`;
  if (body !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers: h, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : JSON.parse(text), headers: res.headers };
}

/** The one error shape (docs/api.md). */
function expectErrorShape(a: Answer, status: number, code?: string): void {
  expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(status);
  expect(typeof a.body.error?.code, JSON.stringify(a.body).slice(0, 500)).toBe('string');
  expect(typeof a.body.error?.message).toBe('string');
  if (code !== undefined) expect(a.body.error.code).toBe(code);
  expect(Object.keys(a.body)).toEqual(['error']);
}

describe('tenant isolation and authentication (real scheduler process)', () => {
  let stack: Stack;
  let url: string;
  let victim: string;
  let attacker: string;
  let victimKey: string;
  let attackerKey: string;
  let revokedKey: string;
  let victimRun: string;
  const wf = routerChain('iso', 'billing', 'billing', { routerTtftMs: 30_000, downTtftMs: 100 });

  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'sec-iso', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
    victim = newTenant('victim');
    attacker = newTenant('attacker');
    victimKey = (await tenantKey(url, victim)) as string;
    attackerKey = (await tenantKey(url, attacker)) as string;
    // A second key of the victim, revoked before use.
    const extra = await call(url, 'POST', `/v1/admin/tenants/${victim}/keys`, stack.adminKey, { label: 'to revoke' });
    expect(extra.status).toBe(201);
    revokedKey = extra.body.key;
    expect((await call(url, 'DELETE', `/v1/admin/tenants/${victim}/keys/${extra.body.keyId}`, stack.adminKey)).status).toBe(200);
    expect((await call(url, 'PUT', `/v1/tenants/${victim}/config`, victimKey, { alpha: 0.3, budgetUsd: 1 })).status).toBe(200);
    expect((await call(url, 'POST', '/v1/workflows', victimKey, { workflow: wf })).status).toBe(201);
    // A long-running run (the router waits 30 s) so that cancel and dial have something to change.
    const sub = await call(url, 'POST', '/v1/runs', victimKey, { workflow: 'iso', inputs: { q: 'secret input of the victim' }, runId: 'victim-run' });
    expect(sub.status).toBe(201);
    victimRun = sub.body.runId;
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  });

  /** Every tenant-scoped operation, aimed at the victim's resources. */
  const victimOps = (): Array<[string, string, unknown]> => [
    ['GET', `/v1/runs/${victim}/${victimRun}`, undefined],
    ['GET', `/v1/runs/${victim}/${victimRun}/decisions`, undefined],
    ['POST', `/v1/runs/${victim}/${victimRun}/cancel`, { reason: 'attack' }],
    ['PUT', `/v1/runs/${victim}/${victimRun}/dial`, { alpha: 1 }],
    ['GET', `/v1/tenants/${victim}/config`, undefined],
    ['PUT', `/v1/tenants/${victim}/config`, { alpha: 1, lambdaUsdPerSec: 100, budgetUsd: 1000, allowDisclosure: true }],
    ['POST', '/v1/runs', { tenant: victim, workflow: 'iso', inputs: { q: 'x' }, runId: 'attacker-made' }],
    ['POST', '/v1/workflows', { tenant: victim, workflow: { ...wf, nodes: wf.nodes.map((n) => ({ ...n, prompt: 'leak {{inputs.q}}' })) } }],
    ['GET', `/v1/workflows?tenant=${victim}`, undefined],
    ['GET', `/v1/tenants/${victim}/limits`, undefined],
    // The console's platform routes (list, stats, events, webhook) take the tenant the same way.
    ['GET', `/v1/runs?tenant=${victim}`, undefined],
    ['GET', `/v1/stats?tenant=${victim}`, undefined],
    ['GET', `/v1/runs/${victim}/${victimRun}/events`, undefined],
    ['PUT', `/v1/tenants/${victim}/webhook`, { url: 'https://example.com/hook', secret: 'a-secret-of-enough-length-1234567890' }],
    ['GET', `/v1/tenants/${victim}/webhook`, undefined],
    ['DELETE', `/v1/tenants/${victim}/webhook`, undefined],
    ['GET', `/v1/tenants/${victim}/webhook/deliveries`, undefined],
  ];
  /** Operations only the operator may perform. */
  const operatorOps = (): Array<[string, string, unknown]> => [
    ['GET', `/v1/classes/${encodeURIComponent(`${victim}/iso/route->answer`)}`, undefined],
    ['POST', '/v1/kill', { scope: 'global', reason: 'attack' }],
    ['POST', '/v1/kill', { scope: 'tenant', tenant: victim }],
    ['POST', '/v1/revive', { scope: 'global' }],
    ['POST', `/v1/admin/tenants/${victim}/keys`, {}],
    ['GET', `/v1/admin/tenants/${victim}/keys`, undefined],
    ['DELETE', `/v1/admin/tenants/${victim}/keys/k0000000000000000`, undefined],
    ['POST', `/v1/admin/tenants/${victim}/keys/k0000000000000000/rotate`, undefined],
    ['GET', `/v1/attention?tenant=${victim}`, undefined],
    ['PUT', `/v1/admin/tenants/${victim}/limits`, { maxNodes: 1 }],
    ['GET', `/v1/admin/tenants/${victim}/limits`, undefined],
    ['POST', `/v1/runs/${victim}/${victimRun}/nodes/route/attention`, { resolution: 'failed', error: 'attack' }],
  ];

  async function victimState(): Promise<unknown> {
    const run = await call(url, 'GET', `/v1/runs/${victim}/${victimRun}`, victimKey);
    const cfg = await call(url, 'GET', `/v1/tenants/${victim}/config`, victimKey);
    const wfs = await call(url, 'GET', '/v1/workflows', victimKey);
    const keys = await call(url, 'GET', `/v1/admin/tenants/${victim}/keys`, stack.adminKey);
    const kill = await call(url, 'GET', '/healthz', undefined);
    return { status: run.body.status, alpha: run.body.alpha, cfg: cfg.body, wfs: wfs.body, keys: keys.body, runs: await stack.redis.zrange(`${stack.prefix}:{tenant:${victim}}:runs`, '0', '-1'), health: kill.status };
  }

  it('without a key, with a malformed key and with a revoked key: 401 everywhere, nothing changes', async () => {
    const before = await victimState();
    for (const key of [undefined, 'gmb_not-a-real-key', `gmb_${'A'.repeat(43)}`, revokedKey, 'Bearer', stack.adminKey.slice(0, -1)])
      for (const [method, path, body] of [...victimOps(), ...operatorOps()]) {
        const a = await call(url, method, path, key, body);
        expectErrorShape(a, 401, 'UNAUTHENTICATED');
        expect(a.headers.get('www-authenticate')).toBe('Bearer');
      }
    expect(await victimState()).toEqual(before);
  });

  it("another tenant's key: 404 as for an unknown id on every tenant operation, 403 on operator ones, nothing changes", async () => {
    const before = await victimState();
    for (const [method, path, body] of victimOps()) {
      const a = await call(url, method, path, attackerKey, body);
      expectErrorShape(a, 404, 'NOT_FOUND');
      // The same answer as for a tenant that does not exist at all.
      const ghost = await call(url, method, path.replace(victim, 'no-such-tenant-xyz'), attackerKey, body !== null && typeof body === 'object' && 'tenant' in body ? { ...body, tenant: 'no-such-tenant-xyz' } : body);
      expect(ghost.status).toBe(404);
      expect(a.body.error.message.replace(victim, 'T')).toBe(ghost.body.error.message.replace('no-such-tenant-xyz', 'T'));
      // Nothing of the victim's appears in the answer.
      expect(JSON.stringify(a.body)).not.toContain('secret input');
    }
    for (const [method, path, body] of operatorOps()) expectErrorShape(await call(url, method, path, attackerKey, body), 403, 'FORBIDDEN');
    // Lists without a filter cover the key's own tenant only.
    expect((await call(url, 'GET', '/v1/tenants', attackerKey)).body.tenants).toEqual([attacker]);
    const listed = await call(url, 'GET', '/v1/runs', attackerKey);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toContain(victim);
    expect(await victimState()).toEqual(before);
    expect((await call(url, 'GET', `/v1/runs/${victim}/attacker-made`, victimKey)).status).toBe(404);
  });

  it('the own key: every tenant operation succeeds on its own resources', async () => {
    const t = newTenant('own');
    const key = (await tenantKey(url, t)) as string;
    expect((await call(url, 'PUT', `/v1/tenants/${t}/config`, key, { alpha: 0.9 })).status).toBe(200);
    expect((await call(url, 'GET', `/v1/tenants/${t}/config`, key)).body.alpha).toBe(0.9);
    expect((await call(url, 'POST', '/v1/workflows', key, { workflow: wf })).status).toBe(201);
    expect((await call(url, 'GET', '/v1/workflows', key)).body.workflows.map((w: { name: string }) => w.name)).toEqual(['iso']);
    // The tenant comes from the key; naming it explicitly is allowed too.
    const sub = await call(url, 'POST', '/v1/runs', key, { tenant: t, workflow: 'iso', inputs: { q: 'mine' } });
    expect(sub.status).toBe(201);
    expect(sub.body.tenant).toBe(t);
    const id = sub.body.runId;
    expect((await call(url, 'GET', `/v1/runs/${t}/${id}`, key)).status).toBe(200);
    expect((await call(url, 'GET', `/v1/runs/${t}/${id}/decisions`, key)).status).toBe(200);
    expect((await call(url, 'PUT', `/v1/runs/${t}/${id}/dial`, key, { alpha: 0.1 })).status).toBe(200);
    expect((await call(url, 'POST', `/v1/runs/${t}/${id}/cancel`, key, {})).body.status).toBe('cancelled');
  });

  it('run ids and workflow names are scoped to the tenant: the same names never meet', async () => {
    // The attacker registers a workflow under the victim's workflow name and submits with the
    // victim's run id: both land in the attacker's own namespace.
    const evil = { ...wf, nodes: wf.nodes.map((n) => ({ ...n, prompt: 'exfiltrate {{inputs.q}}' })) };
    expect((await call(url, 'POST', '/v1/workflows', attackerKey, { workflow: evil })).status).toBe(201);
    const a = await call(url, 'POST', '/v1/runs', attackerKey, { workflow: 'iso', inputs: { q: 'a' }, runId: 'victim-run' });
    expect(a.status).toBe(201);
    expect(a.body.tenant).toBe(attacker);
    const v = await call(url, 'GET', `/v1/runs/${victim}/victim-run`, victimKey);
    expect(v.body.tenant).toBe(victim);
    const stored = JSON.parse((await stack.redis.hget(`${stack.prefix}:{tenant:${victim}}:workflows`, 'iso')) as string);
    expect(stored.nodes[0].prompt).toBe('Classify: {{inputs.q}}');
    // A second submit by the victim with its own run id is idempotent for the victim only.
    const again = await call(url, 'POST', '/v1/runs', victimKey, { workflow: 'iso', inputs: { q: 'again' }, runId: 'victim-run' });
    expect(again.status).toBe(200);
  });

  it('operator key: key management, class internals and the kill switch', async () => {
    const t = newTenant('ops');
    const created = await call(url, 'POST', `/v1/admin/tenants/${t}/keys`, stack.adminKey, { label: 'ci' });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^gmb_[A-Za-z0-9_-]{43}$/);
    // Only an HMAC is stored: the key itself appears nowhere in Redis.
    const keys = await stack.redis.hgetall(`${stack.prefix}:{auth}:keys`);
    expect(JSON.stringify(keys)).not.toContain(created.body.key);
    expect(JSON.stringify(await stack.redis.hgetall(`${stack.prefix}:{tenant:${t}}:apikeys`))).not.toContain(created.body.key);
    const listed = await call(url, 'GET', `/v1/admin/tenants/${t}/keys`, stack.adminKey);
    expect(listed.body.keys).toEqual([{ keyId: created.body.keyId, createdAtMs: created.body.createdAtMs, revokedAtMs: null, label: 'ci' }]);
    expect((await call(url, 'GET', `/v1/tenants/${t}/config`, created.body.key)).status).toBe(200);
    const rotated = await call(url, 'POST', `/v1/admin/tenants/${t}/keys/${created.body.keyId}/rotate`, stack.adminKey);
    expect(rotated.status).toBe(201);
    expect((await call(url, 'GET', `/v1/tenants/${t}/config`, created.body.key)).status).toBe(401);
    expect((await call(url, 'GET', `/v1/tenants/${t}/config`, rotated.body.key)).status).toBe(200);
    expect((await call(url, 'GET', '/v1/classes/no-such-class', stack.adminKey)).status).toBe(404);
    // The operator must name the tenant it acts for.
    const noTenant = await call(url, 'POST', '/v1/runs', stack.adminKey, { workflow: wf, inputs: { q: 'x' } });
    expectErrorShape(noTenant, 400, 'VALIDATION');
    expect(noTenant.body.error.field).toBe('tenant');
  });

  it('D4: router-level and parser errors answer in the one error shape', async () => {
    const bad = await call(url, 'GET', `/v1/runs/${victim}/%E0%A4%A`, victimKey);
    expectErrorShape(bad, 400, 'VALIDATION');
    const long = await call(url, 'GET', `/v1/runs/${victim}/${'r'.repeat(200)}`, victimKey);
    expectErrorShape(long, 400, 'VALIDATION');
    expect(long.body.error.field).toBe('runId');
    const veryLong = await call(url, 'GET', `/v1/runs/${victim}/${'r'.repeat(5_000)}`, victimKey);
    expectErrorShape(veryLong, 414, 'URI_TOO_LONG');
    expect(veryLong.body.error.message.length).toBeLessThan(200);
    const emptyJsonDelete = await call(url, 'DELETE', `/v1/admin/tenants/${victim}/keys/k0000000000000000`, stack.adminKey, undefined, { 'content-type': 'application/json' });
    expect(emptyJsonDelete.status).toBeGreaterThanOrEqual(400);
    expectErrorShape(emptyJsonDelete, emptyJsonDelete.status);
    const junkDelete = await call(url, 'DELETE', `/v1/admin/tenants/${victim}/keys/k0000000000000000`, stack.adminKey, '{"a":', { 'content-type': 'application/json' });
    expectErrorShape(junkDelete, 400, 'VALIDATION');
    const textBody = await call(url, 'POST', '/v1/runs', victimKey, 'hello', { 'content-type': 'text/plain' });
    expectErrorShape(textBody, 400, 'VALIDATION');
    const xmlBody = await call(url, 'POST', '/v1/runs', victimKey, '<run/>', { 'content-type': 'application/xml' });
    expectErrorShape(xmlBody, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const noRoute = await call(url, 'GET', '/v1/nothing-here', victimKey);
    expectErrorShape(noRoute, 404, 'NOT_FOUND');
    const badJson = await call(url, 'POST', '/v1/runs', victimKey, '{"workflow": ');
    expectErrorShape(badJson, 400, 'VALIDATION');
    const badField = await call(url, 'PUT', `/v1/runs/${victim}/${victimRun}/dial`, victimKey, { alpha: 'high' });
    expectErrorShape(badField, 400, 'VALIDATION');
    expect(badField.body.error.field).toBe('alpha');
    // Health needs no key.
    expect((await call(url, 'GET', '/healthz', undefined)).status).toBe(200);
  });
});
