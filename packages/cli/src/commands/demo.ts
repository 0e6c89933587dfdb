/**
 * `gambit demo`: starts Redis (if none is reachable at REDIS_URL), the estimator, the scheduler
 * and workers as separate processes, runs the demo workflows with and without speculation on
 * the simulated provider (or a real one when OPENAI_API_KEY / ANTHROPIC_API_KEY is set), shows
 * progress, prints the table, and shuts everything down (also on Ctrl-C). With --keep-running
 * the services stay up for use over HTTP until Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { ValidationError } from '@gambit/shared';
import type { Command } from 'commander';
import { SchedulerClient } from '../demo/client.js';
import { formatTable, runDemo } from '../demo/run-demo.js';
import { startStack, type Stack } from '../demo/stack.js';
import { demoWorkflows } from '../demo/workflows.js';

interface DemoFlags {
  runs: string;
  workers: string;
  timeScale: string;
  alpha: string;
  lambda: string;
  concurrency: string;
  port: string;
  keepRunning: boolean;
  json?: string;
}

function num(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new ValidationError([{ path: `--${name}`, message: `must be a number in [${min}, ${max}], got "${v}"` }]);
  return n;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('start Redis, estimator, scheduler and workers; run the demo workflows with and without speculation; print the table')
    .option('--runs <n>', 'runs per workflow and mode', '8')
    .option('--workers <n>', 'worker processes', '2')
    .option('--time-scale <x>', 'simulated-provider time scale (1 = real model latencies)', '0.5')
    .option('--alpha <a>', 'the dial α (M3): 1 latency first, 0 cost first', '0.5')
    .option('--lambda <usd>', 'λ, dollars per second of latency saved', '0.002')
    .option('--concurrency <n>', 'runs in flight at once', '8')
    .option('--port <n>', 'scheduler HTTP port (0 = any free port)', '0')
    .option('--keep-running', 'leave the services up after the table, until Ctrl-C', false)
    .option('--json <file>', 'also write the summary as JSON')
    .action(async (flags: DemoFlags) => {
      const runs = num('runs', flags.runs, 1, 10_000);
      const workers = num('workers', flags.workers, 1, 64);
      const timeScale = num('time-scale', flags.timeScale, 0.001, 10);
      const alpha = num('alpha', flags.alpha, 0, 1);
      const lambdaUsdPerSec = num('lambda', flags.lambda, 0, 1_000_000);
      const concurrency = num('concurrency', flags.concurrency, 1, 1_000);
      const port = num('port', flags.port, 0, 65_535);
      const provider = process.env.OPENAI_API_KEY ? 'openai' : process.env.ANTHROPIC_API_KEY ? 'anthropic' : 'simulated';
      const say = (m: string) => process.stderr.write(`${m}\n`);
      say(`gambit demo: provider ${provider}${provider === 'simulated' ? ` (time scale ${timeScale})` : ''}, α=${alpha}, λ=$${lambdaUsdPerSec}/s, ${runs} runs per workflow and mode`);
      // Issue 10 item 8: with no key, the demo opts in to the simulated fallback, visibly.
      const simulatedFallback = provider === 'simulated';
      if (simulatedFallback)
        say(
          'no OPENAI_API_KEY or ANTHROPIC_API_KEY: the demo workers run with GAMBIT_SIMULATED_FALLBACK=1, so a workflow naming openai, anthropic or local runs on the simulated provider (reported as provider "simulated"); without it such a node fails with PROVIDER_NOT_CONFIGURED',
        );

      let stack: Stack | undefined;
      let stopping = false;
      const shutdown = async (code: number) => {
        if (stopping) return;
        stopping = true;
        say('stopping services...');
        await stack?.stop();
        process.exit(code);
      };
      process.on('SIGINT', () => void shutdown(130));
      process.on('SIGTERM', () => void shutdown(143));

      // The demo's own operator key (or the one in GAMBIT_ADMIN_KEY) and one API key per demo
      // tenant, created through the key API as an operator would (docs/security.md).
      const adminKey = process.env.GAMBIT_ADMIN_KEY ?? `adm_${randomBytes(32).toString('base64url')}`;
      const keyHmacSecret = process.env.GAMBIT_KEY_HMAC_SECRET ?? randomBytes(32).toString('hex');
      stack = await startStack(
        { workers, timeScale, prefix: `demo${Date.now().toString(36)}`, port, logLevel: 'info', adminKey, keyHmacSecret, simulatedFallback },
        say,
      );
      const client = new SchedulerClient(stack.baseUrl, adminKey);
      const tenantKeys: Record<string, string> = {};
      for (const t of ['demo-on', 'demo-off']) tenantKeys[t] = (await client.createTenantKey(t, 'gambit demo')).key;
      say(`API keys created: tenants demo-on and demo-off each have one (Authorization: Bearer <key>); the operator key ${process.env.GAMBIT_ADMIN_KEY === undefined ? 'was generated for this demo' : 'is GAMBIT_ADMIN_KEY'}`);
      const tty = process.stderr.isTTY === true;
      let lastPrint = 0;
      const started = Date.now();
      const rows = await runDemo(
        client,
        demoWorkflows(provider),
        { tenant: 'demo', runs, concurrency, alpha, lambdaUsdPerSec, runTimeoutMs: 300_000 },
        (done, total, failed) => {
          const now = Date.now();
          if (!tty && done !== total && now - lastPrint < 2_000) return;
          lastPrint = now;
          const msg = `runs ${done}/${total}${failed > 0 ? ` (${failed} failed)` : ''}, ${((now - started) / 1000).toFixed(1)} s`;
          if (tty) process.stderr.write(`\r${msg}${done === total ? '\n' : ''}`);
          else say(msg);
        },
      );
      process.stdout.write(`\n${formatTable(rows)}\n\n`);
      for (const r of rows) process.stdout.write(`  ${r.workflow}: ${r.description}${r.failed > 0 ? ` — ${r.failed} runs FAILED` : ''}\n`);
      process.stdout.write(
        '\n  "p50 on/off": run latency with and without speculation; "saved": 1 - mean(on)/mean(off);\n' +
          '  "$ wasted": speculative spend that bought nothing; waits: runtime decisions that chose WAIT, by reason.\n',
      );
      if (flags.json !== undefined) writeFileSync(flags.json, `${JSON.stringify({ provider, timeScale, alpha, lambdaUsdPerSec, rows }, null, 2)}\n`);
      const failed = rows.reduce((s, r) => s + r.failed, 0);
      if (flags.keepRunning) {
        say(`services are running: scheduler API at ${stack.baseUrl} (docs/api.md), Redis at ${stack.redisUrl}. Ctrl-C stops them.`);
        say('Every request needs an API key (docs/security.md). As tenant demo-on:');
        say(`  curl -H 'authorization: Bearer ${tenantKeys['demo-on']}' ${stack.baseUrl}/v1/workflows`);
        say(`As the operator (kill switch, class internals, keys): GAMBIT_ADMIN_KEY=${adminKey}`);
        say(`  gambit keys create acme --url ${stack.baseUrl}   (with GAMBIT_ADMIN_KEY set)`);
        return;
      }
      await shutdown(failed > 0 ? 1 : 0);
    });
}
