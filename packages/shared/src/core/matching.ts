/**
 * M7 (matching): when is the guess î "the same" as the real output i.
 *   Tier 1: equality after canonicalisation (JSON: sorted keys, stable stringify; text: trimmed,
 *           whitespace collapsed; lower-cased where the edge says so).
 *   Tier 2: cosine similarity of normalised embeddings ≥ threshold (default 0.95), for text.
 *   Tier 3: a predicate the workflow author registers by name.
 * M8 streaming: a prefix of the upstream's stream can rule î out (cancel the speculation), or
 * settle which one of a known set of labels it is (flip WAIT → SPECULATE early).
 */
import { ValidationError } from '../errors.js';

export interface CanonicalOptions {
  readonly caseInsensitive?: boolean;
}

/** The tier-selection fields of an edge's `match` (schemas/workflow.ts MatchSpec fits). */
export interface MatchOptions extends CanonicalOptions {
  readonly tier: 1 | 2 | 3;
  readonly threshold?: number;
  readonly predicate?: string;
}

function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`).join(',')}}`;
}

function parseStructured(text: string): object | undefined {
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    return typeof v === 'object' && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

function collapse(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

/**
 * M7 tier-1 canonical form. Objects and arrays (or text that parses as a JSON object/array)
 * become a stable stringify with sorted keys; other text is trimmed with whitespace collapsed.
 */
export function canonicalize(value: unknown, opts: CanonicalOptions = {}): string {
  let out: string;
  if (typeof value === 'string') {
    const structured = parseStructured(value);
    out = structured !== undefined ? stableStringify(structured) : collapse(value);
  } else {
    out = stableStringify(value);
  }
  return opts.caseInsensitive === true ? out.toLowerCase() : out;
}

/** M7 tier 1. */
export function tier1Match(predicted: unknown, actual: unknown, opts: CanonicalOptions = {}): boolean {
  return canonicalize(predicted, opts) === canonicalize(actual, opts);
}

/** Text → vector. Implementations: HashingEmbedder (local, deterministic), or a provider's model. */
export interface Embedder {
  embed(text: string): Promise<number[]>;
}

function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A deterministic, dependency-free embedder: a bag of hashed character n-grams (feature
 * hashing with a sign hash) of the lower-cased, whitespace-collapsed text, L2-normalised.
 * Texts sharing most n-grams have cosine near 1; unrelated texts near 0.
 */
export class HashingEmbedder implements Embedder {
  constructor(
    readonly dimensions = 512,
    readonly ngram = 3,
  ) {}

  embedSync(text: string): number[] {
    const v = new Array<number>(this.dimensions).fill(0);
    const t = ` ${collapse(text).toLowerCase()} `;
    for (let i = 0; i + this.ngram <= t.length; i++) {
      const g = t.slice(i, i + this.ngram);
      const bucket = fnv1a(g, 0) % this.dimensions;
      v[bucket]! += (fnv1a(g, 0x9e3779b9) & 1) === 0 ? 1 : -1;
    }
    return normalize(v);
  }

  async embed(text: string): Promise<number[]> {
    return this.embedSync(text);
  }
}

export function normalize(v: readonly number[]): number[] {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return norm === 0 ? v.map(() => 0) : v.map((x) => x / norm);
}

/** Cosine similarity (0 when either vector is zero). */
export function cosine(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new ValidationError([{ path: 'embedding', message: `dimension mismatch ${a.length} vs ${b.length}` }]);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** M7 tier 3: an author-supplied predicate, registered by name. */
export type MatchPredicate = (predicted: string, actual: string) => boolean | Promise<boolean>;

export interface MatchDeps {
  /** Tier 2 embedder (default: a HashingEmbedder). */
  readonly embedder?: Embedder;
  /** Tier 3 predicates by name. */
  readonly predicates?: ReadonlyMap<string, MatchPredicate>;
}

export interface MatchResult {
  readonly matched: boolean;
  readonly tier: 1 | 2 | 3;
  /** Tier 2: the cosine similarity. */
  readonly score?: number;
}

const defaultEmbedder = new HashingEmbedder();

/** M7: does î match i under the edge's match spec? */
export async function matchOutput(spec: MatchOptions, predicted: string, actual: string, deps: MatchDeps = {}): Promise<MatchResult> {
  if (spec.tier === 1) return { matched: tier1Match(predicted, actual, spec), tier: 1 };
  if (spec.tier === 2) {
    // Identical canonical forms match without an embedding call.
    if (tier1Match(predicted, actual, spec)) return { matched: true, tier: 2, score: 1 };
    const embedder = deps.embedder ?? defaultEmbedder;
    const [a, b] = await Promise.all([embedder.embed(predicted), embedder.embed(actual)]);
    const score = cosine(a, b);
    return { matched: score >= (spec.threshold ?? 0.95), tier: 2, score };
  }
  const name = spec.predicate;
  const fn = name === undefined ? undefined : deps.predicates?.get(name);
  if (fn === undefined)
    throw new ValidationError([{ path: 'match.predicate', message: `no tier-3 predicate registered as "${String(name)}"` }]);
  return { matched: (await fn(predicted, actual)) === true, tier: 3 };
}

/** Canonical form of a stream prefix: whitespace collapsed, leading and trailing space dropped. */
function canonicalPrefix(prefix: string, opts: CanonicalOptions): string {
  const p = collapse(prefix);
  return opts.caseInsensitive === true ? p.toLowerCase() : p;
}

/**
 * M8: 'ruled_out' when the upstream's streamed prefix can no longer end as î (tier 1 only:
 * its canonical form is not a prefix of canonical î), else 'consistent'. For a JSON î only the
 * opening bracket is checked, since key order in the stream may differ from î's.
 */
export function prefixVerdict(predicted: string, prefix: string, spec: MatchOptions): 'ruled_out' | 'consistent' {
  if (spec.tier !== 1) return 'consistent';
  const p = canonicalPrefix(prefix, spec);
  if (p === '') return 'consistent';
  if (parseStructured(predicted) !== undefined) return p[0] === predicted.trim()[0] ? 'consistent' : 'ruled_out';
  return canonicalize(predicted, spec).startsWith(p) ? 'consistent' : 'ruled_out';
}

/**
 * M8: the one candidate label still consistent with the prefix, or undefined when none or
 * several are. Used to flip WAIT → SPECULATE once the stream has revealed the label.
 */
export function settledBy(prefix: string, candidates: readonly string[], opts: CanonicalOptions = {}): string | undefined {
  const p = canonicalPrefix(prefix, opts);
  let found: string | undefined;
  for (const c of candidates) {
    if (!canonicalize(c, opts).startsWith(p)) continue;
    if (found !== undefined && canonicalize(found, opts) !== canonicalize(c, opts)) return undefined;
    found ??= c;
  }
  return found;
}
