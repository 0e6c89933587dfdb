/**
 * `gambit replay <trace.jsonl>` (METHOD.md M9 stage 1, M11): replays recorded runs under the
 * chosen policies through the core's decision rule, prints the refit priors, the summary table
 * and the headroom verdict, or all of it as JSON with --json.
 */
import { readFile, writeFile } from 'node:fs/promises';
import {
  createPriceTable,
  loadSnapshotPriceTable,
  type PosteriorMode,
  type PriceTable,
  TenantPriorsSchema,
  ValidationError,
} from '@gambit/shared';
import { formatTable, headroom, POLICIES, type PolicyName, parseTrace, replay, summarize, toDecisionRecord } from '@gambit/replay';
import { type Command, InvalidArgumentError, Option } from 'commander';

function parseUnit(name: string, lo: number, hi: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}]`);
    return n;
  };
}

/** `mean`, or `lcb:<quantile>` (a lower credible bound, e.g. lcb:0.1). */
export function parsePosteriorMode(v: string): PosteriorMode {
  if (v === 'mean') return { kind: 'mean' };
  const m = /^lcb:(0?\.\d+)$/.exec(v);
  if (m !== null) return { kind: 'lower_bound', quantile: Number(m[1]) };
  throw new InvalidArgumentError('use "mean" or "lcb:<quantile>", e.g. lcb:0.1');
}

interface ReplayCliOptions {
  policy: 'all' | PolicyName;
  alpha: number;
  lambda: number;
  prices: 'snapshot' | 'live';
  posteriorMode: PosteriorMode;
  refitPriors: boolean;
  estimates: 'history' | 'recorded';
  decisions?: string;
  fit?: string;
  json: boolean;
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('Replay recorded workflow runs (JSON lines, docs/trace-format.md) under speculation policies')
    .argument('<trace>', 'trace file: one run per line')
    .addOption(new Option('--policy <policy>', 'policy to report').choices(['all', ...POLICIES]).default('all'))
    .option('--alpha <α>', 'the dial α in [0, 1] (1 = latency first)', parseUnit('α', 0, 1), 0.5)
    .option('--lambda <usdPerSec>', 'λ, dollars per second of latency saved', parseUnit('λ', 0, 1e6), 0.01)
    .addOption(new Option('--prices <source>', 'price table: the frozen snapshot or the live genai-prices package').choices(['snapshot', 'live']).default('snapshot'))
    .addOption(
      new Option('--posterior-mode <mode>', 'P from the posterior: mean or lcb:<quantile>').argParser(parsePosteriorMode).default({ kind: 'mean' }, 'mean'),
    )
    .addOption(
      new Option('--estimates <source>', 'durations and output tokens decisions use: running means of earlier runs, or each run\'s own (perfect)')
        .choices(['history', 'recorded'])
        .default('history'),
    )
    .option('--refit-priors', 'use the priors refit from this trace (in-sample) instead of the M5 defaults', false)
    .option('--fit <file>', 'write the type priors refit from this trace as a body for PUT /v1/tenants/:tenant/priors (M5, M9)')
    .option('--decisions <file>', 'also write every decision record and its outcome (JSON lines) of the reported policies')
    .option('--json', 'machine-readable output', false)
    .action(async (trace: string, opts: ReplayCliOptions) => {
      const runs = parseTrace(await readFile(trace, 'utf8'));
      const prices: PriceTable = opts.prices === 'live' ? createPriceTable() : loadSnapshotPriceTable();
      // never, ev and oracle are always replayed: the relative columns and the headroom need them.
      const result = replay(runs, {
        policies: POLICIES,
        dial: { alpha: opts.alpha, lambdaUsdPerSec: opts.lambda },
        prices,
        posteriorMode: opts.posteriorMode,
        useRefitPriors: opts.refitPriors,
        estimates: opts.estimates,
        keepDecisions: opts.decisions !== undefined,
      });
      const all = summarize(result);
      const room = headroom(result, all);
      const shown = opts.policy === 'all' ? all : all.filter((s) => s.policy === opts.policy);
      if (shown.length === 0) throw new ValidationError([{ path: '--policy', message: 'no such policy' }]);
      if (opts.fit !== undefined) {
        // M9: the refit priors in the priors API's format (schemas/priors.ts), validated before writing.
        const types: Record<string, { a: number; b: number }> = {};
        for (const r of result.refit) if (r.type !== 'router_k_way') types[r.type] = { a: r.prior.a, b: r.prior.b };
        await writeFile(opts.fit, `${JSON.stringify(TenantPriorsSchema.parse({ types }), null, 2)}\n`);
      }
      if (opts.decisions !== undefined) {
        const byId = new Map(runs.map((r) => [r.runId, r]));
        const lines: string[] = [];
        for (const p of result.policies) {
          if (!shown.some((s) => s.policy === p.policy)) continue;
          for (const r of p.runs)
            for (const d of r.decisions ?? []) lines.push(JSON.stringify({ policy: p.policy, ...toDecisionRecord(byId.get(r.runId)!, p.policy, d) }));
        }
        await writeFile(opts.decisions, lines.length > 0 ? `${lines.join('\n')}\n` : '');
      }
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              trace,
              runs: runs.length,
              dial: result.dial,
              posteriorMode: result.posteriorMode,
              prices: opts.prices,
              usedRefitPriors: result.usedRefitPriors,
              estimates: result.estimates,
              refitPriors: result.refit,
              policies: shown,
              headroom: room,
            },
            null,
            2,
          )}\n`,
        );
        return;
      }
      const out: string[] = [];
      out.push(`${runs.length} runs from ${trace}; α=${opts.alpha}, λ=$${opts.lambda}/s, prices=${opts.prices}, P=${formatMode(opts.posteriorMode)}, estimates=${opts.estimates}`);
      out.push('');
      out.push(`Type priors refit from the trace (M9; ${result.usedRefitPriors ? 'used' : 'not used, the M5 defaults are'}):`);
      for (const r of result.refit)
        out.push(
          `  ${r.type.padEnd(18)} Beta(${r.prior.a.toFixed(2)}, ${r.prior.b.toFixed(2)})  mean ${(r.prior.a / (r.prior.a + r.prior.b)).toFixed(3)}  ` +
            `from ${r.outcomes} outcomes in ${r.classes} edge class${r.classes === 1 ? '' : 'es'} (hit rate ${r.hitRate.toFixed(3)}); default Beta(${r.defaultPrior.a}, ${r.defaultPrior.b})`,
        );
      if (result.refit.length === 0) out.push('  (no opportunity with a guess in the trace)');
      out.push('');
      out.push(formatTable(shown));
      // Issue 9 item 8: say what a miss was priced from.
      for (const s of shown)
        if (s.missesPricedFromRecorded > 0)
          out.push(
            `  ${s.policy}: ${s.missesPricedFromRecorded} of ${s.misses} misses priced from the operation that finally ran (the trace records no \`speculative\` operation for them): ` +
              'assumes the attempt on the wrong guess ran the same model or tool, prompt size and output; a guess that routes to another model or renders a longer prompt costs more',
          );
      if (room !== undefined) {
        out.push('');
        out.push('Headroom (M11):');
        out.push(`  oracle saving: ${(room.oracleSavingMs / 1000).toFixed(2)} s per run (${room.oracleSavingPct.toFixed(1)}% of ${(room.neverMeanLatencyMs / 1000).toFixed(2)} s)`);
        out.push(
          `  EV rule at α=${opts.alpha}, λ=$${opts.lambda}/s: ${(room.evSavingMs / 1000).toFixed(2)} s per run (${room.evSavingPct.toFixed(1)}%), ` +
            `${room.evShareCaptured === null ? '-' : `${(room.evShareCaptured * 100).toFixed(0)}%`} of the oracle's saving, $${room.evExtraUsdPerRun.toFixed(6)} extra per run`,
        );
        out.push(`  ${room.verdict}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}

function formatMode(m: PosteriorMode): string {
  return m.kind === 'mean' ? 'posterior mean' : `lower bound q=${m.quantile}`;
}
