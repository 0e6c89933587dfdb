/**
 * Typed wrappers of the estimator's and the control plane's Lua scripts (M5, M9): applying an
 * outcome to a class, moving a class between stages, creating a class, and setting or clearing
 * kill-switch entries. Every state change of calibration goes through one of these scripts, so
 * several estimators and schedulers can act at once.
 */
import { classKeys, controlKeys, type KeySpace } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const ESTIMATOR_SCRIPTS = [
  'estimatorApplyOutcomes-N.lua',
  'estimatorSetStage-3.lua',
  'controlEnsureClass-1.lua',
  'controlSetKill-1.lua',
  'controlClearKill-1.lua',
  'readClassState-2.lua',
] as const;

export function defineEstimatorScripts(redis: RedisLike): void {
  defineScripts(redis, ESTIMATOR_SCRIPTS);
}

export type KillScope = 'global' | 'tenant' | 'class';
export type LiveStageName = 'shadow' | 'canary' | 'online' | 'killed';

export interface ApplyOutcomeArgs {
  readonly classId: string;
  readonly outcomeId: string;
  readonly kind: 'hit' | 'miss' | 'cancelled' | 'shadow_hit' | 'shadow_miss';
  readonly wasteNanoUsd: number;
  readonly savedMs: number;
  readonly fencingViolation: boolean;
  readonly windowCap: number;
  readonly nowMs: number;
  readonly fallbackPrior: { readonly a: number; readonly b: number };
  readonly fallbackStage: LiveStageName;
  readonly tenant: string;
  /** Page-Hinkley δ of the class's tenant. */
  readonly phDelta: number;
  /** Outcome ids applied before this (ms) are forgotten; absent: none (ApplyOutcomesArgs). */
  readonly forgetBeforeMs?: number;
}

export interface AppliedSnapshot {
  readonly stage: LiveStageName;
  readonly stageVersion: number;
  readonly a: number;
  readonly b: number;
  readonly stageN: number;
  readonly stageRealN: number;
  readonly stageSavedMs: number;
  readonly stageWasteNanoUsd: number;
  readonly stageFencing: number;
  readonly window: string;
  /**
   * `window` is outcomes [start, end) of the sequence whose prefix hit counts are `cum` (the
   * class's window before the batch followed by the batch's outcomes): the detector counts from
   * it instead of recounting each window (ClassSnapshot.windowHits).
   */
  readonly windowHits: { readonly cum: readonly number[]; readonly start: number; readonly end: number };
  readonly killedUntilMs: number;
  readonly tenant: string;
  readonly ph: { readonly n: number; readonly mean: number; readonly cum: number; readonly max: number };
}

/** One outcome of a batch (`estimatorApplyOutcomes`): the per-outcome part of `ApplyOutcomeArgs`. */
export interface BatchOutcome {
  readonly outcomeId: string;
  readonly kind: ApplyOutcomeArgs['kind'];
  readonly wasteNanoUsd: number;
  readonly savedMs: number;
  readonly fencingViolation: boolean;
  readonly windowCap: number;
  readonly tenant: string;
  readonly phDelta: number;
}

export interface ApplyOutcomesArgs {
  readonly classId: string;
  /** In stream order: applied in this order, each snapshot taken right after its outcome. */
  readonly outcomes: readonly BatchOutcome[];
  readonly nowMs: number;
  readonly fallbackPrior: { readonly a: number; readonly b: number };
  readonly fallbackStage: LiveStageName;
  /**
   * Outcome ids applied before this (ms) are forgotten by the class's dedupe set; absent: none.
   * The estimator passes its dedupe horizon (services/estimator/src/dedupe-horizon.ts: the
   * window before the outcome streams' delivery cut), so that every id that may still come back
   * is remembered and the set stays bounded by the window, not by throughput.
   */
  readonly forgetBeforeMs?: number;
}

/** One class's outcomes of a batch (`estimatorApplyClasses`), in stream order. */
export interface ClassBatch {
  readonly classId: string;
  readonly outcomes: readonly BatchOutcome[];
}

export interface ApplyClassesArgs extends Omit<ApplyOutcomesArgs, 'classId' | 'outcomes'> {
  readonly classes: readonly ClassBatch[];
}

const SCRIPT = 'estimatorApplyOutcomes-N.lua';
/**
 * Outcomes one call carries on a single server (several classes' together): a script holds Redis
 * for its whole run (about 4-5 µs per outcome), so a batch is cut into calls of at most this
 * many to let other clients' commands (the schedulers' decisions) in between; the fixed cost of
 * a call (about 40 µs in the client) stays below 0.3 µs per outcome.
 */
const MAX_CALL_OUTCOMES = 200;
const KIND_CODE: Readonly<Record<ApplyOutcomeArgs['kind'], string>> = { hit: 'h', miss: 'm', cancelled: 'c', shadow_hit: 'H', shadow_miss: 'M' };
/** Settings sets (windowCap, tenant, Page-Hinkley delta) one class of a call can name: one printable character each, '!' (33) to '~' (126). */
const MAX_SETS = 94;
/** A class's reply: the class state before the batch (15 values), then a, b, a0, b0, hits, misses, applied flags, integral. */
const AB_BEFORE = 15;
const FLAGS = 21;
const INTEGRAL = 22;
const PER_APPLIED = 23;

/** A class's outcomes [from, to) ready to send: the settings set of each and the number of sets. */
interface Part {
  readonly classId: string;
  readonly outcomes: readonly BatchOutcome[];
  readonly from: number;
  readonly to: number;
  readonly setOf: readonly number[];
  readonly setCount: number;
}

/** The longest run of `outcomes` from `from` that names at most MAX_SETS settings sets. */
function partFrom(classId: string, outcomes: readonly BatchOutcome[], from: number): Part {
  const sets = new Map<string, number>();
  const setOf: number[] = [];
  let prev: BatchOutcome | undefined;
  let idx = 0;
  let to = from;
  for (; to < outcomes.length; to++) {
    const o = outcomes[to] as BatchOutcome;
    // Outcomes of one class nearly always share their tenant's settings: no key built then.
    if (prev === undefined || o.windowCap !== prev.windowCap || o.phDelta !== prev.phDelta || o.tenant !== prev.tenant) {
      const key = `${o.windowCap}\u0000${o.phDelta}\u0000${o.tenant}`;
      const known = sets.get(key);
      if (known === undefined) {
        if (sets.size === MAX_SETS) break;
        idx = sets.size;
        sets.set(key, idx);
      } else idx = known;
      prev = o;
    }
    setOf.push(idx);
  }
  return { classId, outcomes, from, to, setOf, setCount: sets.size };
}

/** Appends a part's 4 keys and its arguments (the script's per-class layout). */
function encodePart(ks: KeySpace, p: Part, keys: string[], args: Array<string | number>): void {
  const k = classKeys(ks, p.classId);
  keys.push(k.posterior, k.seen, k.window, k.windowBits);
  const count = p.to - p.from;
  let kinds = '';
  let fencing = '';
  let setChars = '';
  let nums = '';
  const setArgs: Array<string | number> = new Array(3 * p.setCount);
  for (let i = 0; i < count; i++) {
    const o = p.outcomes[p.from + i] as BatchOutcome;
    const code = KIND_CODE[o.kind];
    if (code === undefined) throw new RangeError(`outcome kind must be one of ${Object.keys(KIND_CODE).join(', ')}, got ${String(o.kind)}`);
    kinds += code;
    // Money and time only for the real speculations (hit, miss, cancelled), the script's only readers of them.
    if (code === 'h' || code === 'm' || code === 'c') nums += `${Math.round(o.wasteNanoUsd)},${Math.round(o.savedMs)},`;
    fencing += o.fencingViolation ? '1' : '0';
    const set = p.setOf[i] as number;
    setChars += String.fromCharCode(33 + set);
    if (setArgs[3 * set] === undefined) {
      setArgs[3 * set] = o.windowCap;
      setArgs[3 * set + 1] = o.tenant;
      setArgs[3 * set + 2] = o.phDelta;
    }
  }
  args.push(kinds, fencing, setChars, p.setCount);
  for (const v of setArgs) args.push(v);
  args.push(nums);
  for (let i = 0; i < count; i++) args.push((p.outcomes[p.from + i] as BatchOutcome).outcomeId);
}

/** One script call for `parts` (one per class; in a Cluster, callers send one part per call). */
async function callParts(
  redis: RedisLike,
  ks: KeySpace,
  x: Omit<ApplyClassesArgs, 'classes'>,
  parts: readonly Part[],
  forgetBeforeMs: number | undefined,
): Promise<Array<Array<AppliedSnapshot | undefined> | Error>> {
  const keys: string[] = [];
  const args: Array<string | number> = [x.nowMs, x.fallbackPrior.a, x.fallbackPrior.b, x.fallbackStage, forgetBeforeMs === undefined ? '' : Math.floor(forgetBeforeMs)];
  for (const p of parts) encodePart(ks, p, keys, args);
  const replies = await callScript<Array<Array<string | number>>>(redis, SCRIPT, keys, args);
  return parts.map((p, i) => decodePart(p, replies[i] as Array<string | number>));
}

/**
 * Rebuilds each outcome's snapshot of a part from its class's reply: the counters, the posterior
 * (from the counts, or per outcome when the prior is not integral), the Page-Hinkley state (the
 * script's steps, in the same double arithmetic) and the window.
 */
function decodePart(p: Part, r: Array<string | number>): Array<AppliedSnapshot | undefined> | Error {
  const count = p.to - p.from;
  const out: Array<AppliedSnapshot | undefined> = new Array(count).fill(undefined);
  const status = Number(r[0]);
  if (status === -1) return new Error(`estimatorApplyOutcomes: class ${p.classId}: ${String(r[1])}`);
  if (status === 0) return out;
  const num = (i: number) => Number(r[i] ?? 0);
  const stage = String(r[1]) as LiveStageName;
  const stageVersion = num(2);
  const killedUntilMs = num(3);
  const tenant = String(r[4] ?? '');
  const before = String(r[5] ?? '');
  let stageN = num(6);
  let stageRealN = num(7);
  let stageSavedMs = num(8);
  let stageWasteNanoUsd = num(9);
  let stageFencing = num(10);
  let phN = num(11);
  let phMean = num(12);
  let phCum = num(13);
  let phMax = num(14);
  let a = num(AB_BEFORE);
  let b = num(AB_BEFORE + 1);
  const a0 = num(AB_BEFORE + 2);
  const b0 = num(AB_BEFORE + 3);
  let hits = num(AB_BEFORE + 4);
  let misses = num(AB_BEFORE + 5);
  const flags = String(r[FLAGS] ?? '');
  const integral = num(INTEGRAL) === 1;
  const hitOf = (o: BatchOutcome) => (o.kind === 'hit' || o.kind === 'shadow_hit' ? 1 : o.kind === 'miss' || o.kind === 'shadow_miss' ? 0 : -1);
  // The window before the batch followed by the batch's applied hits and misses: every snapshot's
  // window is a suffix of a prefix of it (RPUSH x + LTRIM -windowCap -1 keeps a suffix).
  let pushed = '';
  for (let i = 0; i < count; i++) {
    if (flags.charCodeAt(i) !== 49) continue;
    const hit = hitOf(p.outcomes[p.from + i] as BatchOutcome);
    if (hit !== -1) pushed += hit === 1 ? '1' : '0';
  }
  const full = before + pushed;
  // Prefix hit counts as a plain array (prefixHits' Int32Array would allocate an ArrayBuffer
  // backing store per class per batch, which costs the garbage collector more).
  const cum: number[] = new Array(full.length + 1);
  cum[0] = 0;
  for (let i = 0; i < full.length; i++) cum[i + 1] = (cum[i] as number) + (full.charCodeAt(i) === 49 ? 1 : 0);
  let end = before.length;
  let len = before.length;
  let nth = 0;
  for (let i = 0; i < count; i++) {
    if (flags.charCodeAt(i) !== 49) continue;
    const o = p.outcomes[p.from + i] as BatchOutcome;
    const hit = hitOf(o);
    if (hit !== -1) {
      stageN++;
      // The posterior: a0 + hits and b0 + misses, exact for the integers the script vouched for.
      if (hit === 1) hits++;
      else misses++;
      if (integral) {
        a = a0 + hits;
        b = b0 + misses;
      }
      // The script's Page-Hinkley step (pageHinkleyStep), on the same doubles.
      phN++;
      phMean = phMean + (hit - phMean) / phN;
      phCum = phCum + (hit - phMean + o.phDelta);
      phMax = Math.max(phMax, phCum);
      end++;
      len = Math.min(len + 1, o.windowCap);
    }
    if (!integral) {
      a = num(PER_APPLIED + 2 * nth);
      b = num(PER_APPLIED + 2 * nth + 1);
    }
    nth++;
    if (o.kind === 'hit' || o.kind === 'miss' || o.kind === 'cancelled') {
      stageRealN++;
      stageSavedMs += Math.round(o.savedMs);
      stageWasteNanoUsd += Math.round(o.wasteNanoUsd);
      stageFencing += o.fencingViolation ? 1 : 0;
    }
    out[i] = {
      stage,
      stageVersion,
      a,
      b,
      stageN,
      stageRealN,
      stageSavedMs,
      stageWasteNanoUsd,
      stageFencing,
      window: full.slice(end - len, end),
      windowHits: { cum, start: end - len, end },
      killedUntilMs,
      tenant,
      ph: { n: phN, mean: phMean, cum: phCum, max: phMax },
    };
  }
  return out;
}

/**
 * Applies a batch of outcomes of several classes (issue 13 item 2): on a single server in one
 * script call per MAX_CALL_OUTCOMES outcomes, in a Cluster one call per class (each class's keys
 * are one slot); each class's outcomes in stream order. Returns, per class, per outcome the class snapshot right after it
 * (what `estimatorApplyOutcome` returned for it alone) or `undefined` when its id was already
 * counted, earlier or in the same batch; or an Error for a class whose update failed (the others
 * are applied). A class naming more than MAX_SETS distinct (windowCap, tenant, delta) settings
 * is sent alone as several consecutive calls, which apply it as one call would (each continues
 * from the state the previous one left; ids are forgotten by the last call only, so an earlier
 * one never forgets an id a later part redelivers; a last call of duplicates only forgets
 * nothing, the next batch does). A failed call (the connection) rejects.
 */
export async function estimatorApplyClasses(
  redis: RedisLike,
  ks: KeySpace,
  x: ApplyClassesArgs,
): Promise<Array<Array<AppliedSnapshot | undefined> | Error>> {
  if (x.forgetBeforeMs !== undefined && !Number.isFinite(x.forgetBeforeMs)) throw new RangeError(`forgetBeforeMs must be finite, got ${x.forgetBeforeMs}`);
  const results: Array<Array<AppliedSnapshot | undefined> | Error> = new Array(x.classes.length);
  const whole: Array<{ at: number; part: Part }> = [];
  const split: Array<Promise<void>> = [];
  for (const [at, c] of x.classes.entries()) {
    if (c.outcomes.length === 0) {
      results[at] = [];
      continue;
    }
    const first = partFrom(c.classId, c.outcomes, 0);
    if (first.to === c.outcomes.length) {
      whole.push({ at, part: first });
      continue;
    }
    split.push(
      (async () => {
        const snaps: Array<AppliedSnapshot | undefined> = [];
        for (let p = first; ; p = partFrom(c.classId, c.outcomes, p.to)) {
          const last = p.to === c.outcomes.length;
          const [r] = await callParts(redis, ks, x, [p], last ? x.forgetBeforeMs : undefined);
          if (r instanceof Error) {
            results[at] = r;
            return;
          }
          for (const snap of r as Array<AppliedSnapshot | undefined>) snaps.push(snap);
          if (last) break;
        }
        results[at] = snaps;
      })(),
    );
  }
  // On a single server, classes share a call up to MAX_CALL_OUTCOMES outcomes (a larger class
  // goes alone); in a Cluster, one call per class (its slot).
  const groups: Array<Array<{ at: number; part: Part }>> = [];
  if ((redis as { isCluster?: boolean }).isCluster === true) {
    for (const w of whole) groups.push([w]);
  } else {
    let group: Array<{ at: number; part: Part }> = [];
    let size = 0;
    for (const w of whole) {
      const n = w.part.to - w.part.from;
      if (group.length > 0 && size + n > MAX_CALL_OUTCOMES) {
        groups.push(group);
        group = [];
        size = 0;
      }
      group.push(w);
      size += n;
    }
    if (group.length > 0) groups.push(group);
  }
  const calls = groups.map(async (g) => {
    const rs = await callParts(
      redis,
      ks,
      x,
      g.map((w) => w.part),
      x.forgetBeforeMs,
    );
    for (const [i, w] of g.entries()) results[w.at] = rs[i] as Array<AppliedSnapshot | undefined> | Error;
  });
  await Promise.all([...calls, ...split]);
  return results;
}

/**
 * Applies a batch of outcomes of one class (`estimatorApplyClasses` with one class), in order:
 * per outcome, the class snapshot right after it, or `undefined` when its id was already counted.
 */
export async function estimatorApplyOutcomes(redis: RedisLike, ks: KeySpace, x: ApplyOutcomesArgs): Promise<Array<AppliedSnapshot | undefined>> {
  if (x.outcomes.length === 0) return [];
  const { classId, outcomes, ...rest } = x;
  const [r] = await estimatorApplyClasses(redis, ks, { ...rest, classes: [{ classId, outcomes }] });
  if (r instanceof Error) throw r;
  return r as Array<AppliedSnapshot | undefined>;
}

/** Applies one outcome (a batch of one); `undefined` when the outcome id was already counted (duplicate delivery). */
export async function estimatorApplyOutcome(redis: RedisLike, ks: KeySpace, x: ApplyOutcomeArgs): Promise<AppliedSnapshot | undefined> {
  const [snap] = await estimatorApplyOutcomes(redis, ks, {
    classId: x.classId,
    outcomes: [
      {
        outcomeId: x.outcomeId,
        kind: x.kind,
        wasteNanoUsd: x.wasteNanoUsd,
        savedMs: x.savedMs,
        fencingViolation: x.fencingViolation,
        windowCap: x.windowCap,
        tenant: x.tenant,
        phDelta: x.phDelta,
      },
    ],
    nowMs: x.nowMs,
    fallbackPrior: x.fallbackPrior,
    fallbackStage: x.fallbackStage,
    ...(x.forgetBeforeMs === undefined ? {} : { forgetBeforeMs: x.forgetBeforeMs }),
  });
  return snap;
}

export interface SetStageArgs {
  readonly classId: string;
  /** Expected current stage, or '*' for any stage other than `to`. */
  readonly expected: LiveStageName | '*';
  readonly expectedVersion?: number;
  readonly to: LiveStageName;
  readonly reason: string;
  readonly nowMs: number;
  readonly killedUntilMs?: number;
  /** Restart learning from the prior and empty the window. */
  readonly reset?: boolean;
}

export type EstimatorSetStageResult = { applied: true; stageVersion: number } | { applied: false; stage?: string };

export async function estimatorSetStage(redis: RedisLike, ks: KeySpace, x: SetStageArgs): Promise<EstimatorSetStageResult> {
  const k = classKeys(ks, x.classId);
  const r = await callScript<Array<string | number>>(
    redis,
    'estimatorSetStage-3.lua',
    [k.posterior, k.window, k.windowBits],
    [x.expected, x.expectedVersion ?? '', x.to, x.reason, x.nowMs, x.killedUntilMs ?? 0, x.reset === true ? 1 : 0],
  );
  if (Number(r[0]) === 1) return { applied: true, stageVersion: Number(r[1]) };
  return r[1] === undefined ? { applied: false } : { applied: false, stage: String(r[1]) };
}

export interface EnsureClassArgs {
  readonly classId: string;
  readonly prior: { readonly a: number; readonly b: number };
  readonly depType: string;
  readonly k?: number;
  readonly initialStage: 'shadow' | 'canary' | 'online';
  readonly nowMs: number;
  readonly tenant: string;
}

/**
 * readClassState-2.lua (issue 13 item 1): a class's posterior hash and its recent hit sequence
 * (`windowbits`, null when absent) in one command.
 */
export async function readClassState(redis: RedisLike, ks: KeySpace, classId: string): Promise<{ posterior: Record<string, string>; windowBits: string | null }> {
  const k = classKeys(ks, classId);
  const [flat, bits] = await callScript<[string[], string | null | undefined]>(redis, 'readClassState-2.lua', [k.posterior, k.windowBits], []);
  const posterior: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) posterior[flat[i] as string] = flat[i + 1] as string;
  return { posterior, windowBits: bits ?? null };
}

/** 1 created, 2 completed a hash the estimator had created provisionally, 0 already existed. */
export async function controlEnsureClass(redis: RedisLike, ks: KeySpace, x: EnsureClassArgs): Promise<0 | 1 | 2> {
  const k = classKeys(ks, x.classId);
  const r = await callScript<number>(
    redis,
    'controlEnsureClass-1.lua',
    [k.posterior],
    [x.prior.a, x.prior.b, x.depType, x.k ?? '', x.initialStage, x.nowMs, x.tenant],
  );
  return Number(r) as 0 | 1 | 2;
}

export interface SetKillArgs {
  readonly scope: KillScope;
  readonly id: string;
  readonly reason: string;
  readonly nowMs: number;
  readonly untilMs?: number;
  readonly autoGlobal?: { readonly classCount: number; readonly windowMs: number };
  readonly source: 'estimator' | 'operator';
  /** Who set the kill (an operator key's name, `estimator`); recorded with the entry. */
  readonly owner?: string;
}

export async function controlSetKill(
  redis: RedisLike,
  ks: KeySpace,
  x: SetKillArgs,
): Promise<{ changed: boolean; version: number; autoGlobal: boolean }> {
  const c = controlKeys(ks);
  const r = await callScript<number[]>(
    redis,
    'controlSetKill-1.lua',
    [c.kill],
    [
      c.alarmsChannel,
      x.scope,
      x.scope === 'global' ? '' : x.id,
      x.reason,
      x.nowMs,
      x.untilMs ?? 0,
      x.autoGlobal?.classCount ?? 0,
      x.autoGlobal?.windowMs ?? 0,
      x.source,
      x.owner ?? '',
    ],
  );
  return { changed: Number(r[0]) === 1, version: Number(r[1]), autoGlobal: Number(r[2]) === 1 };
}

export async function controlClearKill(
  redis: RedisLike,
  ks: KeySpace,
  x: { scope: KillScope; id: string; reason: string; nowMs: number },
): Promise<{ changed: boolean; version: number }> {
  const c = controlKeys(ks);
  const r = await callScript<number[]>(
    redis,
    'controlClearKill-1.lua',
    [c.kill],
    [c.alarmsChannel, x.scope, x.scope === 'global' ? '' : x.id, x.reason, x.nowMs],
  );
  return { changed: Number(r[0]) === 1, version: Number(r[1]) };
}
