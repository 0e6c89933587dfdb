/**
 * The console end to end in Debian's Chromium driven by playwright-core (issue 12 item 2):
 * the operator sees a run's timeline with a hit and a miss and every decision's numbers, kills a
 * class from the classes page (with a confirmation and a reason) and sees speculation of it stop,
 * opens bull-board; a tenant key sees only its own tenant. Real scheduler and worker processes.
 * Screenshots are kept in test/console/artifacts/ (gitignored; the path is printed).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, type RunView, type Stack, startStack, submitRun, tenantKey, waitForRun, waitForView } from '../e2e/harness.js';
import { llm } from '../e2e/workflows.js';

const ARTIFACTS = join(import.meta.dirname, 'artifacts');
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Two speculated edges in one run: r1→a1 guessed right (a hit), r2→a2 guessed wrong (a miss). */
function hitAndMiss(name: string) {
  return {
    name,
    nodes: [
      llm('r1', 'Route: {{inputs.q}}', { output: 'billing', ttftMs: 500 }, { expectedOutputTokens: 2, maxTokens: 8 }),
      llm('a1', 'Answer the {{nodes.r1.output}} question: {{inputs.q}}', { output: 'a1 done', ttftMs: 400 }, { expectedOutputTokens: 8, maxTokens: 32 }),
      llm('r2', 'Language of: {{inputs.q}}', { output: 'fr', ttftMs: 500 }, { expectedOutputTokens: 2, maxTokens: 8 }),
      llm('a2', 'Reply in {{nodes.r2.output}}: {{inputs.q}}', { output: 'a2 done', ttftMs: 400 }, { expectedOutputTokens: 8, maxTokens: 32 }),
    ],
    edges: [
      { from: 'r1', to: 'a1', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } },
      { from: 'r2', to: 'a2', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'en' } },
    ],
  };
}

describe('console in Chromium', () => {
  let stack: Stack;
  let url: string;
  let ctx: BrowserContext;
  let page: Page;
  let userDataDir: string;

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    process.stdout.write(`console screenshots: ${ARTIFACTS}\n`);
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'console', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
    userDataDir = await mkdtemp(join(tmpdir(), 'gambit-chromium-'));
    ctx = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
    page = ctx.pages()[0] ?? (await ctx.newPage());
  }, 180_000);
  afterAll(async () => {
    await ctx?.close();
    if (userDataDir !== undefined) await rm(userDataDir, { recursive: true, force: true });
    await stack?.stop();
  });

  async function run(tenant: string, q: string): Promise<RunView> {
    const r = await submitRun(url, { tenant, workflow: hitAndMiss('console-wf'), inputs: { q } });
    expect(r.status).toBe(201);
    const id = r.body.runId as string;
    await waitForRun(url, tenant, id);
    // Outcomes are scored once the cancelled miss is billed.
    return waitForView(url, tenant, id, (v) => v.outcomes.some((o: RunView) => o.kind === 'hit') && v.outcomes.some((o: RunView) => o.kind === 'miss' || o.kind === 'cancelled'));
  }

  it('operator: a run timeline with a hit and a miss; kill a class and speculation of it stops; bull-board; a tenant sees only its own tenant', { timeout: 240_000 }, async () => {
    const tenant = await eagerTenant(url, 'ui');
    const other = await eagerTenant(url, 'uiother');
    const v = await run(tenant, 'first');
    const otherRun = await run(other, 'other');

    // The run page: a hit bar and a miss bar, and the decisions with their numbers.
    await page.goto(`${url}/console/?key=${encodeURIComponent(stack.adminKey)}#/runs/${tenant}/${v.runId}`);
    await page.locator('#timeline .bar[data-result="hit"]').first().waitFor({ timeout: 20_000 });
    await page.locator('#timeline .bar[data-result="miss"]').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('#who').textContent()).toBe('operator');
    expect(await page.locator('#timeline .bar[data-kind="speculative"][data-result="hit"]').getAttribute('data-attempt')).toMatch(/^a1\./);
    expect(await page.locator('#timeline .bar[data-kind="speculative"][data-result="miss"]').getAttribute('data-attempt')).toMatch(/^a2\./);
    expect(await page.locator('#timeline .bar[data-kind="authoritative"]').count()).toBeGreaterThanOrEqual(3);
    const decisions = await page.locator('#decisions-table tbody tr').allTextContents();
    expect(decisions.some((d) => d.includes('SPECULATE') && d.includes('ev') && /\$\d/.test(d))).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'run-timeline.png'), fullPage: true });

    // Overview: live dollars and latency saved.
    await page.goto(`${url}/console/#/`);
    await page.locator('#stats-table tbody tr').first().waitFor();
    expect(await page.locator('#total-seconds').textContent()).toMatch(/^[1-9]\d*\.\d\d s$|^0\.[0-9]*[1-9][0-9]* s$/);
    await page.screenshot({ path: join(ARTIFACTS, 'overview.png'), fullPage: true });

    // Classes: kill r1->a1 with a confirmation and a reason.
    const classId = `${tenant}/console-wf/r1->a1`;
    await page.goto(`${url}/console/#/classes`);
    const kill = page.locator(`#classes-table button.kill[data-class="${classId}"]`);
    await kill.waitFor();
    await kill.click();
    await page.locator('#confirm-reason').fill('bad guesses (console test)');
    await page.screenshot({ path: join(ARTIFACTS, 'kill-confirm.png') });
    await page.locator('#confirm-ok').click();
    await page.locator(`#classes-table button.revive[data-class="${classId}"]`).waitFor({ timeout: 10_000 });
    const row = await page.locator('#classes-table tr', { has: page.locator(`button[data-class="${classId}"]`) }).textContent();
    expect(row).toContain('bad guesses (console test)');
    await page.screenshot({ path: join(ARTIFACTS, 'classes-killed.png'), fullPage: true });

    // Speculation of the killed class stops; the other class still speculates.
    const after = await waitForRun(url, tenant, (await submitRun(url, { tenant, workflow: hitAndMiss('console-wf'), inputs: { q: 'after kill' } })).body.runId as string);
    await page.goto(`${url}/console/#/runs/${tenant}/${after.runId}`);
    await page.locator('#run[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('#timeline .bar[data-kind="speculative"][data-attempt^="a1."]').count()).toBe(0);
    expect(await page.locator('#timeline .bar[data-kind="speculative"][data-attempt^="a2."]').count()).toBe(1);
    const killedRows = await page.locator('#decisions-table tbody tr').allTextContents();
    expect(killedRows.some((d) => d.startsWith('a1:') && d.includes('WAIT') && d.includes('killed'))).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'run-after-kill.png'), fullPage: true });

    // bull-board, for the operator (the console set its cookie).
    const board = await page.goto(`${url}/admin/queues`);
    expect(board?.status()).toBe(200);
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: join(ARTIFACTS, 'queues.png') });

    // A tenant key: only its own tenant's runs; no classes; another tenant's run is not found.
    const key = (await tenantKey(url, other)) as string;
    await page.goto(`${url}/console/?key=${encodeURIComponent(key)}#/runs`);
    await page.locator('#runs-table tbody tr').first().waitFor();
    expect(await page.locator('#who').textContent()).toBe(`tenant ${other}`);
    expect(await page.locator('#nav-classes').count()).toBe(0);
    const tenants = await page.locator('#runs-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-tenant')));
    expect(new Set(tenants)).toEqual(new Set([other]));
    expect(tenants).toHaveLength(1);
    expect(await page.locator(`#runs-table tr[data-run="${otherRun.runId}"]`).count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'tenant-runs.png'), fullPage: true });
    await page.goto(`${url}/console/#/runs/${tenant}/${v.runId}`);
    await page.locator('#error').waitFor();
    expect(await page.locator('#error').textContent()).toContain('404');
    const denied = await page.goto(`${url}/admin/queues`);
    expect(denied?.status()).toBe(401);
  });
});
