// Where a service's CPU went, from the .cpuprofile files of `node bench/runtime/run.mjs --profile`
// (docs/runtime.md "Measured"). Reads every *.cpuprofile in the directory and, when window.json is
// there (the bench writes it), keeps only the samples of the measured phase (the profiles' and
// the bench's monotonic clocks are the same on Linux). Per profile it prints the CPU time sampled
// (idle excluded) and per operation, the top functions by self time and by inclusive time (each
// function counted once per sample however often it is on the stack), and self time by module
// (node_modules package, the repository's own dist file, Node's internals).
//
// Usage: node bench/runtime/profile-summary.mjs <profile dir or .cpuprofile> [--top 25] [--all] [--json]
//   --all: the whole profile, not only the measured phase.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(argv[i + 1]);
};
const TOP = opt('top', 25);
const ALL = argv.includes('--all');
const JSON_OUT = argv.includes('--json');
const target = argv.find((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1] === '--top'));
if (target === undefined) {
  console.error('usage: node bench/runtime/profile-summary.mjs <profile dir or .cpuprofile> [--top 25] [--all] [--json]');
  process.exit(2);
}
const dir = statSync(target).isDirectory() ? target : dirname(target);
const files = statSync(target).isDirectory() ? readdirSync(target).filter((f) => f.endsWith('.cpuprofile')).sort().map((f) => join(target, f)) : [target];
let window;
try {
  window = JSON.parse(readFileSync(join(dir, 'window.json'), 'utf8'));
} catch {
  window = undefined;
}
if (files.length === 0) {
  console.error(`no .cpuprofile in ${target}`);
  process.exit(1);
}

/** A short, stable name for a script URL: the package or the repository file it belongs to. */
function moduleOf(url) {
  if (url === '') return '(native/VM)';
  if (url.startsWith('node:')) return 'node:internal';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = path.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = /\/(services|packages)\/([^/]+)\/(?:dist|src)\/(.*)$/.exec(path);
  if (m) return `${m[1]}/${m[2]}/${m[3]}`;
  return path;
}

/** The file of a script URL: the package and its path inside it, or the repository file. */
function fileOf(url) {
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm !== -1) return path.slice(nm + 14);
  return moduleOf(url);
}

function fnKey(cf) {
  const name = cf.functionName === '' ? '(anonymous)' : cf.functionName;
  if (cf.url === '') return name;
  return `${name} ${fileOf(cf.url)}:${cf.lineNumber + 1}`;
}

function summarise(file) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Sample i's time and weight: its timestamp, and the interval until the next sample.
  const times = new Array(p.samples.length);
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    times[i] = t;
  }
  const from = !ALL && window !== undefined ? window.measuredPhase.fromUs : -Infinity;
  const to = !ALL && window !== undefined ? window.measuredPhase.toUs : Infinity;
  const self = new Map();
  const incl = new Map();
  const mods = new Map();
  const stackKeys = new Map();
  const keysOf = (id) => {
    let ks = stackKeys.get(id);
    if (ks !== undefined) return ks;
    const set = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const n = byId.get(x);
      if (n.callFrame.functionName === '(root)') continue;
      set.add(fnKey(n.callFrame));
    }
    ks = [...set];
    stackKeys.set(id, ks);
    return ks;
  };
  let busyUs = 0;
  let idleUs = 0;
  let windowUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    if (times[i] < from || times[i] > to) continue;
    const w = i + 1 < p.samples.length ? p.timeDeltas[i + 1] : 0;
    windowUs += w;
    const n = byId.get(p.samples[i]);
    const name = n.callFrame.functionName;
    if (name === '(idle)') {
      idleUs += w;
      continue;
    }
    busyUs += w;
    const k = fnKey(n.callFrame);
    self.set(k, (self.get(k) ?? 0) + w);
    const m = name === '(garbage collector)' || name === '(program)' ? name : moduleOf(n.callFrame.url);
    mods.set(m, (mods.get(m) ?? 0) + w);
    for (const key of keysOf(n.id)) incl.set(key, (incl.get(key) ?? 0) + w);
  }
  const ops = window?.ops;
  const top = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([k, us]) => ({ fn: k, ms: Number((us / 1000).toFixed(1)), pct: Number(((100 * us) / busyUs).toFixed(1)), ...(ops === undefined ? {} : { msPerOp: Number((us / 1000 / ops).toFixed(3)) }) }));
  return {
    profile: basename(file),
    window: !ALL && window !== undefined ? 'measured phase' : 'whole profile',
    sampledMs: Number((windowUs / 1000).toFixed(0)),
    busyMs: Number((busyUs / 1000).toFixed(0)),
    idleMs: Number((idleUs / 1000).toFixed(0)),
    ...(ops === undefined ? {} : { ops, busyMsPerOp: Number((busyUs / 1000 / ops).toFixed(2)) }),
    selfByModule: top(mods),
    self: top(self),
    inclusive: top(incl),
  };
}

const out = files.map(summarise);
if (JSON_OUT) console.log(JSON.stringify(out, null, 2));
else {
  for (const s of out) {
    console.log(`\n=== ${s.profile} (${s.window}): busy ${s.busyMs} ms of ${s.sampledMs} ms sampled${s.ops === undefined ? '' : `, ${s.ops} ops, ${s.busyMsPerOp} ms/op`}`);
    const table = (title, rows) => {
      console.log(`\n${title}`);
      for (const r of rows) console.log(`${String(r.ms).padStart(9)} ms ${String(r.pct).padStart(5)}%${r.msPerOp === undefined ? '' : ` ${r.msPerOp.toFixed(3).padStart(7)} ms/op`}  ${r.fn}`);
    };
    table('self time by module', s.selfByModule);
    table('self time by function', s.self);
    table('inclusive time by function', s.inclusive);
  }
}
