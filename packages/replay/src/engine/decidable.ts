/**
 * When replay decides a node, and on what (M8): the live scheduler's `decidable` over replay's
 * schedule. A node is decided at the first moment every dependency not yet confirmed is either
 * running authoritatively with a guess available, or a cascade source (an upstream whose own
 * speculation, not itself a cascade, has finished while its guesses are still unconfirmed: its
 * speculative result is the guess, depth 2). Dependencies without a guess must be confirmed.
 * Live decides a node once (its `runtime` claim), so this first moment is the only one.
 */
import type { OpModel, RunModel } from './model.js';
import type { EdgeBelief } from './posteriors.js';

/** What replayRun has scheduled so far (nodes before the one being decided). */
export interface Schedule {
  readonly start: Float64Array;
  /** Confirmation times of the nodes decided so far. */
  readonly confirmed: Float64Array;
  /** Speculations: start, P, end of the attempt, in flight until (confirmation on a hit, cancellation on a miss); NaN when none. */
  readonly specAt: Float64Array;
  readonly specP: Float64Array;
  readonly specEnd: Float64Array;
  readonly specUntil: Float64Array;
  readonly specHit: Uint8Array;
  readonly cascade: Uint8Array;
}

/** How a pending dependency is guessed at the decision: the predictor's guess, or the upstream's speculative result. */
export type PendingMode = { readonly kind: 'guess'; readonly edge: EdgeBelief } | { readonly kind: 'cascade'; readonly edge: EdgeBelief };

export interface Moment {
  /** When the node is decided (before its gap), ms after the run's start. */
  readonly atMs: number;
  /** Dependencies still unconfirmed then, by index, with how each is guessed. */
  readonly pending: ReadonlyMap<number, PendingMode>;
}

interface Interval {
  readonly from: number;
  readonly to: number;
  readonly cascade: boolean;
}

/**
 * The decision moment of `node`, or undefined when it never becomes decidable with a dependency
 * pending (every upstream is confirmed first: it simply runs). `guessable` are the edges the
 * policy may speculate on (all with a guess; the oracle's: those that matched).
 * `clairvoyant` (the oracle, a yardstick rather than a model of the scheduler: it speculates
 * exactly on hits): a guess is offered only where it is right, a matched predictor guess from
 * the upstream's start (its speculative start when the upstream itself hit: the oracle is not
 * held back by the scheduler's decidability), a cascade on a speculation that hit; a wrong
 * guess is waited for.
 */
export function decisionMoment(m: RunModel, node: OpModel, guessable: readonly EdgeBelief[], sched: Schedule, clairvoyant = false): Moment | undefined {
  const { start, confirmed, specAt, specEnd, specUntil, specHit, cascade } = sched;
  const perDep = node.deps.map((d): { d: number; edge?: EdgeBelief; ok: Interval[] } => {
    const conf = confirmed[d]!;
    const edge = guessable.find((e) => e.opportunity.from === m.ops[d]!.op.id);
    const done: Interval = { from: conf, to: Number.POSITIVE_INFINITY, cascade: false };
    if (edge === undefined) return { d, ok: [done] };
    const guessAt = (t: number) => t + (edge.opportunity.guesser?.durationMs ?? 0);
    const speculated = !Number.isNaN(specAt[d]!);
    if (clairvoyant && edge.opportunity.matched)
      return { d, edge, ok: [{ from: Math.min(guessAt(speculated ? specAt[d]! : start[d]!), conf), to: Number.POSITIVE_INFINITY, cascade: false }] };
    if (clairvoyant && !(speculated && specHit[d] === 1)) return { d, ok: [done] };
    if (!speculated) return { d, edge, ok: [{ from: Math.min(guessAt(start[d]!), conf), to: Number.POSITIVE_INFINITY, cascade: false }] };
    const ok: Interval[] = [];
    // A cascade source while its finished speculation awaits its guesses' confirmation.
    if (cascade[d] === 0 && specEnd[d]! < specUntil[d]!) ok.push({ from: specEnd[d]!, to: specUntil[d]!, cascade: true });
    // A hit becomes the upstream's result; after a miss the upstream runs for real (start[d]).
    ok.push(specHit[d] === 1 ? done : { from: Math.min(guessAt(start[d]!), conf), to: Number.POSITIVE_INFINITY, cascade: false });
    return { d, edge, ok };
  });
  const times = [...new Set(perDep.flatMap((x) => x.ok.map((i) => i.from)))].sort((a, b) => a - b);
  for (const t of times) {
    const pending = new Map<number, PendingMode>();
    let feasible = true;
    for (const x of perDep) {
      if (confirmed[x.d]! <= t) continue;
      const iv = x.ok.find((i) => i.from <= t && t < i.to);
      if (iv === undefined || x.edge === undefined) {
        feasible = false;
        break;
      }
      pending.set(x.d, { kind: iv.cascade ? 'cascade' : 'guess', edge: x.edge });
    }
    if (feasible && pending.size > 0) return { atMs: t, pending };
  }
  return undefined;
}
