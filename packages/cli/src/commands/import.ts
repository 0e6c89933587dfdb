/**
 * `gambit import <source>`: converts recorded traces to the replay format (JSON lines):
 * `otlp <file...>` for OTLP/JSON exports of the user's own tracing, `tau-bench` for the bundled
 * tau-bench airline trajectories.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { importOtlp, importTauBench, loadTauBenchData, majorityVoteHitRate, type OtlpExport, toJsonLines } from '@gambit/replay';
import type { Command } from 'commander';

async function emit(text: string, out: string | undefined): Promise<void> {
  if (out === undefined) process.stdout.write(text);
  else await writeFile(out, text);
}

export function register(program: Command): void {
  const cmd = program.command('import').description('Convert recorded traces to the replay trace format (JSON lines)');
  cmd
    .command('otlp')
    .description('OTLP/JSON span exports (resourceSpans → scopeSpans → spans with gen_ai.* attributes)')
    .argument('<files...>', 'OTLP/JSON files (one export document each, or one per line)')
    .option('-o, --out <file>', 'write the trace here instead of stdout')
    .option('--tenant <tenant>', 'tenant for runs without a gambit.tenant attribute')
    .action(async (files: string[], opts: { out?: string; tenant?: string }) => {
      const docs: OtlpExport[] = [];
      for (const f of files) {
        const text = (await readFile(f, 'utf8')).trim();
        if (text.startsWith('{') && text.includes('\n{')) for (const line of text.split('\n')) docs.push(JSON.parse(line) as OtlpExport);
        else docs.push(JSON.parse(text) as OtlpExport);
      }
      const runs = importOtlp(docs, opts.tenant !== undefined ? { defaultTenant: opts.tenant } : {});
      await emit(toJsonLines(runs), opts.out);
      process.stderr.write(`imported ${runs.length} runs, ${runs.reduce((s, r) => s + r.opportunities.length, 0)} opportunities\n`);
    });
  cmd
    .command('tau-bench')
    .description('the bundled tau-bench airline trajectories (gpt-4o agent, 50 tasks × 4 trials)')
    .option('-o, --out <file>', 'write the trace here instead of stdout')
    .action(async (opts: { out?: string }) => {
      const runs = importTauBench(loadTauBenchData());
      await emit(toJsonLines(runs), opts.out);
      const h = majorityVoteHitRate(runs);
      process.stderr.write(`imported ${runs.length} runs; majority-vote guesses match ${h.hits} of ${h.calls} tool calls (${(100 * h.rate).toFixed(1)}%)\n`);
    });
}
