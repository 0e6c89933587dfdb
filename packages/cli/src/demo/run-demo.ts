/**
 * Runs the demo workflows through a live stack: each workflow `runs` times with speculation on
 * and `runs` times with it off (same inputs, interleaved so both see the same load), shows
 * progress, and summarises per workflow: latency with and without speculation, dollars spent and
 * wasted, speculations launched, hits, misses, cancels.
 */
import type { SchedulerClient, RunView } from './client.js';
import type { DemoWorkflow } from './workflows.js';

export interface DemoOptions {
  readonly tenant: string;
  readonly runs: number;
  readonly concurrency: number;
  readonly alpha: number;
  readonly lambdaUsdPerSec: number;
  readonly runTimeoutMs: number;
}

export interface WorkflowSummary {
  workflow: string;
  description: string;
  runs: number;
  failed: number;
  p50OnMs: number;
  p50OffMs: number;
  meanOnMs: number;
  meanOffMs: number;
  usdOn: number;
  usdOff: number;
  wastedUsd: number;
  launched: number;
  hits: number;
  misses: number;
  cancels: number;
  waits: Record<string, number>;
  releasedEffects: number;
}

interface Job {
  wf: DemoWorkflow;
  i: number;
  speculation: boolean;
}

interface Done {
  job: Job;
  view: RunView | undefined;
  error?: string;
}

const tenantFor = (opts: DemoOptions, speculation: boolean) => `${opts.tenant}-${speculation ? 'on' : 'off'}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runOne(client: SchedulerClient, opts: DemoOptions, job: Job): Promise<Done> {
  try {
    // Paired runs: the same run id on two tenants, so the simulated provider (seeded by run and
    // node) draws the same outcomes and token counts with and without speculation.
    const tenant = tenantFor(opts, job.speculation);
    const { runId } = await client.submit({
      tenant,
      runId: `${job.wf.workflow.name}-${job.i}`,
      workflow: job.wf.workflow.name,
      inputs: job.wf.inputs(job.i),
      speculation: job.speculation,
    });
    const deadline = Date.now() + opts.runTimeoutMs;
    for (;;) {
      const view = await client.run(tenant, runId);
      if (view.status !== 'running') return { job, view };
      if (Date.now() > deadline) return { job, view, error: `run ${runId} did not finish within ${opts.runTimeoutMs} ms` };
      await sleep(50);
    }
  } catch (err) {
    return { job, view: undefined, error: (err as Error).message };
  }
}

function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))] as number;
}

const mean = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export async function runDemo(
  client: SchedulerClient,
  workflows: readonly DemoWorkflow[],
  opts: DemoOptions,
  progress: (done: number, total: number, failed: number) => void,
): Promise<WorkflowSummary[]> {
  for (const speculation of [true, false]) {
    const tenant = tenantFor(opts, speculation);
    await client.configureTenant(tenant, { alpha: opts.alpha, lambdaUsdPerSec: opts.lambdaUsdPerSec, initialStage: 'online', budgetUsd: 5 });
    for (const wf of workflows) await client.request('POST', '/v1/workflows', { tenant, workflow: wf.workflow });
  }

  const jobs: Job[] = [];
  for (let i = 0; i < opts.runs; i++)
    for (const wf of workflows) for (const speculation of [true, false]) jobs.push({ wf, i, speculation });
  const results: Done[] = [];
  let next = 0;
  let failed = 0;
  progress(0, jobs.length, 0);
  const lane = async () => {
    for (;;) {
      const job = jobs[next++];
      if (job === undefined) return;
      const r = await runOne(client, opts, job);
      if (r.error !== undefined || r.view?.status !== 'succeeded') failed++;
      results.push(r);
      progress(results.length, jobs.length, failed);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane));

  return workflows.map((wf) => summarise(wf, results.filter((r) => r.job.wf === wf)));
}

function summarise(wf: DemoWorkflow, rs: Done[]): WorkflowSummary {
  const ok = rs.filter((r) => r.view?.status === 'succeeded' && r.view.finishedAtMs !== null);
  const lat = (on: boolean) => ok.filter((r) => r.job.speculation === on).map((r) => (r.view?.finishedAtMs ?? 0) - (r.view?.createdAtMs ?? 0));
  const usd = (on: boolean) => ok.filter((r) => r.job.speculation === on).reduce((s, r) => s + (r.view?.dollars.total.usd ?? 0), 0);
  const on = ok.filter((r) => r.job.speculation);
  const waits: Record<string, number> = {};
  let launched = 0;
  let hits = 0;
  let misses = 0;
  let cancels = 0;
  let wastedUsd = 0;
  let releasedEffects = 0;
  for (const r of on) {
    const v = r.view as RunView;
    wastedUsd += v.dollars.wasted.usd;
    releasedEffects += v.effects.length;
    for (const n of Object.values(v.nodes)) launched += n.attempts.filter((a) => a.kind === 'speculative').length;
    for (const o of v.outcomes) {
      if (o.kind === 'hit') hits++;
      else if (o.kind === 'miss') misses++;
      else if (o.kind === 'cancelled') cancels++;
    }
    for (const d of v.decisions) if (d.phase !== 'plan' && d.action === 'WAIT') waits[d.reason] = (waits[d.reason] ?? 0) + 1;
  }
  const nOn = Math.max(1, lat(true).length);
  const nOff = Math.max(1, lat(false).length);
  return {
    workflow: wf.workflow.name,
    description: wf.description,
    runs: rs.length,
    failed: rs.length - ok.length,
    p50OnMs: percentile(lat(true), 0.5),
    p50OffMs: percentile(lat(false), 0.5),
    meanOnMs: mean(lat(true)),
    meanOffMs: mean(lat(false)),
    usdOn: usd(true) / nOn,
    usdOff: usd(false) / nOff,
    wastedUsd,
    launched,
    hits,
    misses,
    cancels,
    waits,
    releasedEffects,
  };
}

/** The final table, fixed-width for a terminal. */
export function formatTable(rows: readonly WorkflowSummary[]): string {
  const head = ['workflow', 'p50 on', 'p50 off', 'saved', '$/run on', '$/run off', '$ wasted', 'launched', 'hits', 'misses', 'cancels', 'waits (reason)'];
  const body = rows.map((r) => [
    r.workflow,
    `${(r.p50OnMs / 1000).toFixed(2)} s`,
    `${(r.p50OffMs / 1000).toFixed(2)} s`,
    `${(100 * (1 - r.meanOnMs / r.meanOffMs)).toFixed(1)} %`,
    `$${r.usdOn.toFixed(6)}`,
    `$${r.usdOff.toFixed(6)}`,
    `$${r.wastedUsd.toFixed(6)}`,
    String(r.launched),
    String(r.hits),
    String(r.misses),
    String(r.cancels),
    Object.entries(r.waits)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
