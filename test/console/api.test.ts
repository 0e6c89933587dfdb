/**
 * The platform API on real processes (issue 12 item 3): lists with filters and cursors, a run's
 * events as server-sent events, kills with an owner, a reason and an optional expiry that never
 * reset a posterior and are refused for a class that does not exist, and the `gambit` CLI
 * driving the live API. One scheduler and one worker on the suite's Redis.
 */
import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCommand, startProcess } from '@gambit/testkit';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, submitRun, tenantKey, waitForRun } from '../e2e/harness.js';
import { routerChain } from '../e2e/workflows.js';

const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));

/** Reads a run's server-sent events until the server closes the stream. */
async function sse(url: string, path: string, key: string): Promise<Array<{ event: string; data: RunView }>> {
  const res = await fetch(`${url}${path}`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.includes('data: '))
    .map((b) => {
      const event = /^event: (.*)$/m.exec(b)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(b)?.[1] ?? 'null') as RunView;
      return { event, data };
    });
}

describe('platform API (lists, events, kills, CLI)', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'platform', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  async function run(tenant: string, name: string, guess: string, q: string): Promise<RunView> {
    const r = await submitRun(url, { tenant, workflow: routerChain(name, 'billing', guess, { routerTtftMs: 150, downTtftMs: 150 }), inputs: { q } });
    expect(r.status).toBe(201);
    return waitForRun(url, tenant, r.body.runId as string);
  }

  it('lists runs newest first with filters and a cursor; an operator sees every tenant', async () => {
    const a = await eagerTenant(url, 'lista');
    const b = await eagerTenant(url, 'listb');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await run(a, 'wfa', 'billing', `q${i}`)).runId);
    await run(a, 'wfother', 'billing', 'x');
    const bRun = await run(b, 'wfb', 'billing', 'y');

    const p1 = await http<RunView>(url, 'GET', `/v1/runs?tenant=${a}&workflow=wfa&limit=2`);
    expect(p1.status).toBe(200);
    expect(p1.body.runs.map((r: RunView) => r.runId)).toEqual([ids[2], ids[1]]);
    expect(p1.body.runs[0]).toMatchObject({ tenant: a, workflow: 'wfa', status: 'succeeded', speculation: true });
    expect(typeof p1.body.nextCursor).toBe('string');
    const p2 = await http<RunView>(url, 'GET', `/v1/runs?tenant=${a}&workflow=wfa&limit=2&cursor=${p1.body.nextCursor}`);
    expect(p2.body.runs.map((r: RunView) => r.runId)).toEqual([ids[0]]);
    expect(p2.body.nextCursor).toBeNull();
    expect((await http<RunView>(url, 'GET', `/v1/runs?tenant=${a}&status=failed`)).body.runs).toEqual([]);

    const all = await http<RunView>(url, 'GET', '/v1/runs?limit=500');
    const seen = new Set(all.body.runs.map((r: RunView) => `${r.tenant}/${r.runId}`));
    expect(seen.has(`${b}/${bRun.runId}`)).toBe(true);
    expect(seen.has(`${a}/${ids[0]}`)).toBe(true);
    const tenants = await http<RunView>(url, 'GET', '/v1/tenants');
    expect(tenants.body.tenants).toEqual(expect.arrayContaining([a, b]));

    const bad = await http<RunView>(url, 'GET', '/v1/runs?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: RunView) => i.path)).toContain('limit');
    const badCursor = await http<RunView>(url, 'GET', '/v1/runs?cursor=bm90IGpzb24');
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.issues[0].path).toBe('cursor');

    // A tenant key sees only its own tenant: its runs, its stats; another tenant is a 404; classes
    // and kills (class internals) are the operator's.
    const aKey = (await tenantKey(url, a)) as string;
    const own = await http<RunView>(url, 'GET', '/v1/runs?limit=500', undefined, { auth: aKey });
    expect(own.status).toBe(200);
    expect(new Set(own.body.runs.map((r: RunView) => r.tenant))).toEqual(new Set([a]));
    expect(own.body.runs).toHaveLength(4);
    expect((await http<RunView>(url, 'GET', `/v1/runs?tenant=${b}`, undefined, { auth: aKey })).status).toBe(404);
    expect((await http<RunView>(url, 'GET', `/v1/stats?tenant=${b}`, undefined, { auth: aKey })).status).toBe(404);
    expect((await http<RunView>(url, 'GET', '/v1/tenants', undefined, { auth: aKey })).body.tenants).toEqual([a]);
    expect((await http<RunView>(url, 'GET', '/v1/classes', undefined, { auth: aKey })).status).toBe(403);
    expect((await http<RunView>(url, 'GET', '/v1/kills', undefined, { auth: aKey })).status).toBe(403);
    const bKey = (await tenantKey(url, b)) as string;
    const evOther = await fetch(`${url}/v1/runs/${a}/${ids[0]}/events`, { headers: { authorization: `Bearer ${bKey}` } });
    expect(evOther.status).toBe(404);
    await evOther.body?.cancel();
    expect((await http<RunView>(url, 'GET', '/v1/runs', undefined, { auth: null })).status).toBe(401);

    // Workflows: by name, paged, with a prefix filter.
    for (const name of ['wf-c', 'wf-a', 'wf-b', 'other']) {
      const reg = await http<RunView>(url, 'POST', '/v1/workflows', { tenant: a, workflow: routerChain(name, 'billing', 'billing') });
      expect(reg.status).toBe(201);
    }
    const w1 = await http<RunView>(url, 'GET', `/v1/workflows?tenant=${a}&prefix=wf-&limit=2`);
    expect(w1.body.workflows.map((w: RunView) => w.name)).toEqual(['wf-a', 'wf-b']);
    const w2 = await http<RunView>(url, 'GET', `/v1/workflows?tenant=${a}&prefix=wf-&limit=2&cursor=${w1.body.nextCursor}`);
    expect(w2.body).toMatchObject({ workflows: [expect.objectContaining({ name: 'wf-c' })], nextCursor: null });
    expect((await http<RunView>(url, 'GET', `/v1/workflows?tenant=${a}`)).body.workflows).toHaveLength(4);

    // Stats: hits of this tenant's runs, λ-valued seconds saved.
    const stats = await http<RunView>(url, 'GET', `/v1/stats?tenant=${a}&bucketSec=3600`);
    const wfa = stats.body.series.find((s: RunView) => s.workflow === 'wfa');
    expect(wfa.total.hits).toBe(3);
    expect(wfa.total.secondsSaved).toBeGreaterThan(0);
    // eagerTenant's λ is $10/s: savedUsd = 10 × seconds saved.
    expect(wfa.total.savedUsd).toBeCloseTo(10 * wfa.total.secondsSaved, 6);
  });

  it('streams a run\'s events (SSE) from submission to its end; an unknown run is a 404', async () => {
    const tenant = await eagerTenant(url, 'sse');
    const r = await submitRun(url, { tenant, workflow: routerChain('ssewf', 'billing', 'billing', { routerTtftMs: 400, downTtftMs: 300 }), inputs: { q: 's' } });
    const key = (await tenantKey(url, tenant)) as string;
    const events = await sse(url, `/v1/runs/${tenant}/${r.body.runId}/events`, key);
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('run');
    expect(kinds.at(-1)).toBe('end');
    expect(events.at(-1)?.data).toMatchObject({ status: 'succeeded', runId: r.body.runId });
    expect(events.some((e) => e.event === 'decision' && e.data.action === 'SPECULATE')).toBe(true);
    expect(events.some((e) => e.event === 'attempt' && e.data.kind === 'speculative' && e.data.status === 'succeeded')).toBe(true);
    expect(events.some((e) => e.event === 'node' && e.data.nodeId === 'answer' && e.data.state === 'succeeded' && e.data.source === 'speculative')).toBe(true);
    // The run view agrees with the stream's outcomes.
    const view = await waitForRun(url, tenant, r.body.runId as string);
    const streamed = events.filter((e) => e.event === 'outcome').map((e) => e.data.outcomeId);
    expect(streamed.length).toBeGreaterThan(0);
    for (const id of streamed) expect(view.outcomes.map((o: RunView) => o.outcomeId)).toContain(id);
    const missing = await fetch(`${url}/v1/runs/${tenant}/nosuchrun/events`, { headers: { authorization: `Bearer ${key}` } });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as RunView).error.code).toBe('NOT_FOUND');
  });

  it('M9.5 kills: refused for an unknown class; owner and reason kept; no expiry unless asked; the posterior is never reset', async () => {
    const tenant = await eagerTenant(url, 'kills');
    const first = await run(tenant, 'killwf', 'billing', 'k0');
    const classId = first.decisions.find((d: RunView) => d.phase === 'runtime').edgeClasses[0] as string;

    const unknown = await http<RunView>(url, 'POST', '/v1/kill', { scope: 'class', classId: `${classId}-typo`, reason: 'typo' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain(`${classId}-typo`);
    expect((await http<RunView>(url, 'GET', '/v1/kills')).body.kills.some((k: RunView) => k.id === `${classId}-typo`)).toBe(false);

    const before = (await http<RunView>(url, 'GET', `/v1/classes/${encodeURIComponent(classId)}`)).body;
    const k = await http<RunView>(url, 'POST', '/v1/kill', { scope: 'class', classId, reason: 'bad guesses', owner: 'alice' });
    expect(k.status).toBe(200);
    expect(k.body.kill).toMatchObject({ scope: 'class', id: classId, reason: 'bad guesses', owner: 'alice', source: 'operator', untilMs: null, inForce: true });
    const listed = await http<RunView>(url, 'GET', `/v1/kills?scope=class&tenant=${tenant}`);
    expect(listed.body.kills).toEqual([expect.objectContaining({ id: classId, owner: 'alice', untilMs: null })]);

    const killed = (await http<RunView>(url, 'GET', `/v1/classes/${encodeURIComponent(classId)}`)).body;
    expect(killed).toMatchObject({ stage: before.stage, a: before.a, b: before.b, hits: before.hits, blocked: { blocked: true, scope: 'class' } });
    const waited = await run(tenant, 'killwf', 'billing', 'k1');
    expect(waited.decisions.find((d: RunView) => d.phase === 'runtime')).toMatchObject({ action: 'WAIT', reason: 'killed' });
    const cls = await http<RunView>(url, 'GET', `/v1/classes?tenant=${tenant}&killed=true`);
    expect(cls.body.classes.map((c: RunView) => c.classId)).toEqual([classId]);
    expect(cls.body.classes[0].credible.lo).toBeLessThan(cls.body.classes[0].pMean);

    const rv = await http<RunView>(url, 'POST', '/v1/revive', { scope: 'class', classId, reason: 'fixed' });
    expect(rv.status).toBe(200);
    const after = (await http<RunView>(url, 'GET', `/v1/classes/${encodeURIComponent(classId)}`)).body;
    expect(after).toMatchObject({ stage: before.stage, a: before.a, b: before.b, kill: null, blocked: { blocked: false } });
    expect((await run(tenant, 'killwf', 'billing', 'k2')).nodes.answer.source).toBe('speculative');

    // An expiry when asked: the kill lapses on its own (every scheduler honours untilMs).
    const timed = await http<RunView>(url, 'POST', '/v1/kill', { scope: 'class', classId, reason: 'brief', expiresInSec: 1 });
    expect(timed.body.kill.untilMs - timed.body.kill.atMs).toBe(1000);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await http<RunView>(url, 'GET', `/v1/classes/${encodeURIComponent(classId)}`)).body.blocked.blocked).toBe(false);
    expect((await run(tenant, 'killwf', 'billing', 'k3')).nodes.answer.source).toBe('speculative');
    const bad = await http<RunView>(url, 'POST', '/v1/kill', { scope: 'class', classId, expiresInSec: -1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('expiresInSec');
  });

  it('the gambit CLI drives the live API: runs submit --watch, runs get, runs list, classes, kill, revive', { timeout: 240_000 }, async () => {
    const tenant = await eagerTenant(url, 'cli');
    // A tenant's key for its runs, the operator key for classes, kill and revive.
    const env = { GAMBIT_URL: url, GAMBIT_API_KEY: (await tenantKey(url, tenant)) as string };
    const opEnv = { GAMBIT_URL: url, GAMBIT_API_KEY: stack.adminKey };
    const dir = await mkdtemp(join(tmpdir(), 'gambit-cli-'));
    const wfPath = join(dir, 'cliwf.json');
    await chmod(bin, 0o755);
    await writeFile(wfPath, JSON.stringify(routerChain('cliwf', 'billing', 'billing', { routerTtftMs: 150, downTtftMs: 150 })));
    try {
      const sub = startProcess('cli-submit', bin, ['runs', 'submit', wfPath, '--tenant', tenant, '--input', 'q=hello', '--watch'], env);
      expect(await sub.exited(), sub.lines.join('\n')).toBe(0);
      const runId = sub.lines[0] as string;
      expect(runId).toMatch(/^r[0-9a-z]+$/);
      expect(sub.lines).toContain('end: succeeded');
      expect(sub.lines.some((l) => /^decision .*: SPECULATE ev P=/.test(l))).toBe(true);

      const get = startProcess('cli-get', bin, ['runs', 'get', tenant, runId, '--json'], env);
      expect(await get.exited()).toBe(0);
      expect(JSON.parse(get.lines.join('\n'))).toMatchObject({ runId, status: 'succeeded' });

      const list = startProcess('cli-list', bin, ['runs', 'list', '--tenant', tenant], env);
      expect(await list.exited()).toBe(0);
      expect(list.lines.some((l) => l.includes(`${tenant}/${runId} cliwf succeeded`))).toBe(true);

      const classes = startProcess('cli-classes', bin, ['classes', '--tenant', tenant], opEnv);
      expect(await classes.exited()).toBe(0);
      const classId = `${tenant}/cliwf/route->answer`;
      expect(classes.lines.some((l) => l.startsWith(classId))).toBe(true);

      const typo = startProcess('cli-kill-typo', bin, ['kill', '--class', `${classId}x`, '--reason', 'test'], opEnv);
      expect(await typo.exited()).toBe(1);
      expect(typo.lines.join('\n')).toMatch(/error: the scheduler answered 404 NOT_FOUND: class ".*x" does not exist/);
      // A tenant key may not kill (operator only).
      const notOp = startProcess('cli-kill-tenant', bin, ['kill', '--class', classId, '--reason', 'test'], env);
      expect(await notOp.exited()).toBe(1);
      expect(notOp.lines.join('\n')).toContain('error: the scheduler answered 403 FORBIDDEN');

      const kill = startProcess('cli-kill', bin, ['kill', '--class', classId, '--reason', 'cli test', '--owner', 'bob'], opEnv);
      expect(await kill.exited(), kill.lines.join('\n')).toBe(0);
      expect(kill.lines.join('\n')).toMatch(/killed \(version \d+\), until revived/);
      const revive = startProcess('cli-revive', bin, ['revive', '--class', classId, '--reason', 'ok'], opEnv);
      expect(await revive.exited()).toBe(0);

      const cancelGone = startProcess('cli-cancel', bin, ['runs', 'cancel', tenant, runId], env);
      expect(await cancelGone.exited()).toBe(0);
      expect(cancelGone.lines.join('\n')).toContain('not cancelled: the run had already ended (succeeded)');

      // On PATH as infra/setup.sh puts it: a symlink named `gambit` to the built entry point.
      await symlink(bin, join(dir, 'gambit'));
      const onPath = startCommand('cli-path', 'gambit', ['runs', 'get', tenant, runId, '--json'], { ...process.env, ...env, PATH: `${dir}:${process.env.PATH ?? ''}` });
      expect(await onPath.exited(), onPath.lines.join('\n')).toBe(0);
      expect(JSON.parse(onPath.lines.join('\n'))).toMatchObject({ runId, status: 'succeeded' });

      const down = startProcess('cli-down', bin, ['classes', '--url', 'http://127.0.0.1:1'], {});
      expect(await down.exited()).toBe(1);
      expect(down.lines.join('\n')).toContain('cannot reach the scheduler API');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
