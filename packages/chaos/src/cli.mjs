#!/usr/bin/env node
// `pnpm chaos --runs N --faults M --seed S [--time-scale X] [--json FILE] [--break NAME]` (issue
// 11): runs one seeded campaign, prints progress and a summary, exits 1 on a broken invariant
// with the command that replays the seed. `--break NAME` (or GAMBIT_CHAOS_BREAK=NAME) runs it
// against deliberately broken chaos tools (effect-tools.mjs BREAKS): it must then fail.
import { writeFileSync } from 'node:fs';
import { runCampaign } from './campaign.mjs';
import { chaosBreak } from './effect-tools.mjs';

function parseArgs(argv) {
  const o = { runs: 200, faults: 40, seed: Math.floor(Math.random() * 1e6), timeScale: 0.2, json: undefined, breakName: process.env.GAMBIT_CHAOS_BREAK ?? '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (name, min) => {
      const n = Number(val());
      if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}`);
      return n;
    };
    if (a === '--') continue;
    else if (a === '--runs') o.runs = Math.floor(num('--runs', 1));
    else if (a === '--faults') o.faults = Math.floor(num('--faults', 0));
    else if (a === '--seed') o.seed = Math.floor(num('--seed', 0));
    else if (a === '--time-scale') o.timeScale = num('--time-scale', 0.01);
    else if (a === '--json') o.json = val();
    else if (a === '--break') o.breakName = val();
    else throw new Error(`unknown argument ${a} (usage: pnpm chaos --runs N --faults M --seed S [--time-scale X] [--json FILE] [--break NAME])`);
  }
  o.breakName = chaosBreak({ GAMBIT_CHAOS_BREAK: o.breakName }, '--break (or GAMBIT_CHAOS_BREAK)');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`chaos: ${err.message}\n`);
  process.exit(2);
}
const r = await runCampaign(opts);
const out = { ok: r.ok, summary: r.summary, violations: r.violations.slice(0, 200), faults: r.faultLog };
if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(r.summary, null, 2)}\n`);
if (!r.ok) {
  for (const v of r.violations.slice(0, 50)) process.stdout.write(`VIOLATION ${v.invariant}${v.runId === undefined ? '' : ` run ${v.runId}`}: ${v.detail}\n`);
  process.stdout.write(`chaos: ${r.violations.length} violations. Replay with: ${r.summary.replay}\n`);
  process.exit(1);
}
process.stdout.write(`chaos: every invariant held (seed ${opts.seed}). Replay with: ${r.summary.replay}\n`);
