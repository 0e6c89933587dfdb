/**
 * Predictors of an upstream's output î (issue 3 item 3), behind one interface. Each edge class
 * keeps its memory in `classKeys(ks, classId).history`: `v:<value>` -> count of past outputs,
 * `m:<request hash>` -> output of an identical past request. A predictor is never on the
 * critical path (M10): it only reads that memory, and the engine never waits for it.
 */
import { createHash } from 'node:crypto';
import type { Edge, OpSpec, PredictorSpec } from '@gambit/shared';
import { classKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';

export interface ClassHistory {
  /** Past outputs of the upstream and their counts. */
  readonly counts: ReadonlyMap<string, number>;
  /** Output of an identical past request, by request hash. */
  readonly memo: ReadonlyMap<string, string>;
  /** Running mean of the downstream's output tokens (M2), when known. */
  readonly meanDownstreamOutputTokens: number | undefined;
}

export interface PredictContext {
  readonly edge: Edge;
  readonly classId: string;
  /** Hash of the upstream's rendered request (prompt or tool args). */
  readonly requestHash: string;
  readonly history: ClassHistory;
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The upstream's rendered operation. */
  readonly upstreamOp: OpSpec;
}

export interface Prediction {
  readonly value: string;
  /** Dollars spent producing the guess (M10); 0 for memory-based predictors. */
  readonly costUsd: number;
  readonly predictor: string;
}

export interface Predictor {
  readonly kind: PredictorSpec['kind'];
  predict(ctx: PredictContext, spec: PredictorSpec | undefined): Prediction | undefined;
}

export type PredictorFunction = (ctx: PredictContext) => string | undefined;

const MAX_VALUE_CHARS = 4_000;
const MAX_LABEL_CHARS = 256;

/** The most frequent past output of the edge class (labels, routes, gates). */
export const mostFrequent: Predictor = {
  kind: 'most_frequent',
  predict(ctx, spec) {
    let best: string | undefined;
    let bestN = 0;
    for (const [v, n] of ctx.history.counts) {
      // Ties break on the value so every scheduler guesses the same.
      if (n > bestN || (n === bestN && best !== undefined && v < best)) {
        best = v;
        bestN = n;
      }
    }
    const value = best ?? spec?.fallback;
    return value === undefined ? undefined : { value, costUsd: 0, predictor: 'most_frequent' };
  },
};

/** The output of an identical past request (lookups). */
export const memo: Predictor = {
  kind: 'memo',
  predict(ctx, spec) {
    const value = ctx.history.memo.get(ctx.requestHash) ?? spec?.fallback;
    return value === undefined ? undefined : { value, costUsd: 0, predictor: 'memo' };
  },
};

/** A fixed value (e.g. "pass" for a validation gate). */
export const fixed: Predictor = {
  kind: 'fixed',
  predict(_ctx, spec) {
    const value = spec?.value ?? spec?.fallback;
    return value === undefined ? undefined : { value, costUsd: 0, predictor: 'fixed' };
  },
};

/** Built-in user functions; deployments register more in code (`PredictorSet.register`). */
export const BUILTIN_FUNCTIONS: Record<string, PredictorFunction> = {
  /** Passthrough edges: the upstream's rendered prompt (or its `text` arg) is its output. */
  identity: (ctx) => (ctx.upstreamOp.kind === 'llm' ? ctx.upstreamOp.prompt : typeof ctx.upstreamOp.args.text === 'string' ? ctx.upstreamOp.args.text : undefined),
};

export class PredictorSet {
  private readonly functions = new Map<string, PredictorFunction>(Object.entries(BUILTIN_FUNCTIONS));

  register(name: string, fn: PredictorFunction): void {
    this.functions.set(name, fn);
  }

  /**
   * The guess for one edge: its declared predictor, else by dependency type (`lookup`: memo,
   * then most frequent; `validation_gate`: most frequent, falling back to "pass"; others: most
   * frequent). `llm` predictors are not answered here: a cheap model's guess is bought as a
   * job of its own and used once it has arrived (M10 two-stage purchase, see llm.ts).
   */
  predict(ctx: PredictContext): Prediction | undefined {
    const spec = ctx.edge.predictor;
    switch (spec?.kind) {
      case 'most_frequent':
        return mostFrequent.predict(ctx, spec);
      case 'memo':
        return memo.predict(ctx, spec);
      case 'fixed':
        return fixed.predict(ctx, spec);
      case 'function': {
        const fn = spec.name === undefined ? undefined : this.functions.get(spec.name);
        const value = fn?.(ctx) ?? spec.fallback;
        return value === undefined ? undefined : { value, costUsd: 0, predictor: `function:${spec.name ?? ''}` };
      }
      case 'llm':
        return undefined;
      default:
        if (ctx.edge.type === 'lookup') return memo.predict(ctx, undefined) ?? mostFrequent.predict(ctx, undefined);
        if (ctx.edge.type === 'validation_gate') return mostFrequent.predict(ctx, { kind: 'most_frequent', fallback: 'pass' });
        return mostFrequent.predict(ctx, undefined);
    }
  }
}

export function requestHash(op: OpSpec): string {
  const basis = op.kind === 'llm' ? { m: op.model, s: op.system ?? '', p: op.prompt } : { t: op.tool, a: op.args };
  return createHash('sha1').update(JSON.stringify(basis)).digest('hex');
}

/** Reads an edge class's predictor memory. */
export async function loadHistory(redis: RedisLike, ks: KeySpace, classId: string): Promise<ClassHistory> {
  const h = await redis.hgetall(classKeys(ks, classId).history);
  const counts = new Map<string, number>();
  const memoMap = new Map<string, string>();
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith('v:')) counts.set(k.slice(2), Number(v));
    else if (k.startsWith('m:')) memoMap.set(k.slice(2), v);
  }
  const n = Number(h['dout:n'] ?? 0);
  const sum = Number(h['dout:sum'] ?? 0);
  return { counts, memo: memoMap, meanDownstreamOutputTokens: n > 0 ? sum / n : undefined };
}

/** Learns from an upstream's real output (called once, when the node completes). */
export async function recordUpstreamOutput(
  redis: RedisLike,
  ks: KeySpace,
  classId: string,
  edge: Pick<Edge, 'type' | 'predictor'>,
  reqHash: string,
  output: string,
): Promise<void> {
  if (output.length > MAX_VALUE_CHARS) return;
  const k = classKeys(ks, classId).history;
  const writes: Array<Promise<unknown>> = [];
  // Counts only for label-sized outputs (routes, gates, short fields): long free text is never
  // the most frequent answer, and counting it would grow the hash without bound.
  if (output.length <= MAX_LABEL_CHARS) writes.push(redis.hincrby(k, `v:${output}`, 1));
  // Request memory only where a memo guess is used.
  if (edge.type === 'lookup' || edge.predictor?.kind === 'memo') writes.push(redis.hset(k, `m:${reqHash}`, output));
  await Promise.all(writes);
}

/** Learns the downstream's output tokens for the running mean of N_out (M2). */
export async function recordDownstreamTokens(redis: RedisLike, ks: KeySpace, classId: string, outputTokens: number): Promise<void> {
  const k = classKeys(ks, classId).history;
  await Promise.all([redis.hincrby(k, 'dout:sum', Math.round(outputTokens)), redis.hincrby(k, 'dout:n', 1)]);
}
