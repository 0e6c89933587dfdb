// Reads a --monitor-log file and prints, per process, each client command (EVALSHA by script
// name) of the first runs whose keys it names, in order; and the scheduler's commands naming no run.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { luaSource } from '@gambit/shared/redis';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const names = new Map();
const sha = (src) => createHash('sha1').update(src).digest('hex');
const dir = join(ROOT, 'packages/shared/src/redis/lua');
for (const f of readdirSync(dir).filter((x) => x.endsWith('.lua'))) names.set(sha(luaSource(f)), f.replace(/\.lua$/, ''));
const bull = createRequire(import.meta.url)('bullmq/dist/cjs/scripts/index.js');
for (const v of Object.values(bull)) if (typeof v?.content === 'string') names.set(sha(v.content), `bull:${v.name}`);
const [file, nRuns = '3', only = 'scheduler'] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n');
const sources = JSON.parse(lines[0]);
const runs = [];
const known = new Set();
for (const l of lines.slice(1)) for (const m of l.matchAll(/\{run:[^:}]+:([^}]+)\}/g)) known.add(m[1]);
const runOf = (text) => {
  for (const m of text.matchAll(/[0-9a-z]{19}/g)) if (known.has(m[0])) return m[0];
  return undefined;
};
for (const l of lines.slice(1)) {
  if (l === '') continue;
  const [src, cmd, ...rest] = l.split(' ');
  if (src === 'lua') continue;
  const proc = sources[src] ?? '?';
  if (only !== 'all' && proc !== only) continue;
  const c = cmd.toLowerCase();
  const what = c === 'evalsha' ? names.get(rest[0]) ?? rest[0].slice(0, 8) : c;
  const args = c === 'evalsha' ? rest.slice(1) : rest;
  const run = runOf(args.join(' ')) ?? '-';
  if (run !== '-' && !runs.includes(run)) runs.push(run);
  if (run === '-' || runs.indexOf(run) < Number(nRuns)) console.log(`${proc.padEnd(9)} ${run === '-' ? '-'.padEnd(8) : `r${runs.indexOf(run)}`.padEnd(8)} ${what.padEnd(22)} ${args.join(' ').slice(0, 160)}`);
}
