/**
 * The compact record of an ended run (issue 13 item 3): what `compactRun-8.lua` folds a settled
 * run into, and its reader. The record is one JSON string in `runKeys(...).rec`; the run hash keeps
 * its small fields. `expandRunRecord` turns the record back into the shapes the live keys hold
 * (node states, attempt records, the raw decision, outcome and effect lists), so every reader of
 * run state (API, events, listing, the chaos checker) reads an ended run the same way whether it
 * was compacted or not. What a compacted run no longer has: claims and outcome flags of its nodes,
 * the shadow guesses (scored already), `billedTries`, `reservationId`, `workerId`; and, unless the
 * tenant keeps outputs, its inputs, outputs, guesses and released effects.
 */
import { z } from 'zod';
import { type AttemptRecord, AttemptRecordSchema } from '../schemas/jobs.js';
import { ClosedSpecSchema, type NodeState, NodeStateSchema } from './run-scripts.js';

const Rel = z.number().int().optional();

/**
 * An attempt's summary. In a v 2 record `k` ('authoritative'), `s` ('succeeded') and `e` (its
 * node's epoch) are left out at those values; a v 1 record has all three.
 */
const AttemptSummarySchema = z.object({
  k: z.string().optional(),
  e: z.number().int().nonnegative().optional(),
  s: z.string().optional(),
  d: z.string().optional(),
  /** [inputTokens, cachedInputTokens, outputTokens, cacheWriteTokens?] */
  u: z.array(z.number().int().nonnegative()).min(3).max(4).optional(),
  ue: z.literal(1).optional(),
  c: z.number().int().nonnegative(),
  r: z.number().int().nonnegative().optional(),
  t: Rel,
  t0: Rel,
  t1: Rel,
  n: z.number().int().nonnegative(),
  err: z.string().optional(),
  at: z.string().optional(),
  atm: Rel,
  rb: z.literal('operator').optional(),
  /** The worker that ran the attempt's last try. */
  w: z.string().optional(),
  o: z.string().optional(),
  oc: z.literal(1).optional(),
  as: z.record(z.string(), z.string()).optional(),
});

/**
 * A node's summary. In a v 2 record `s` is left out when it is 'succeeded', `au` when it is
 * '<node>.a1' and `src` when it is 'authoritative'; `false` says the node has none. In a v 1
 * record `s` is always there and a missing `au` or `src` means none.
 */
const NodeSummarySchema = z.object({
  s: z.string().optional(),
  e: z.number().int().nonnegative(),
  au: z.union([z.string(), z.literal(false)]).optional(),
  src: z.union([z.string(), z.literal(false)]).optional(),
  t0: Rel,
  t1: Rel,
  err: z.string().optional(),
  o: z.string().optional(),
  cl: z.record(z.string(), ClosedSpecSchema).optional(),
  a: z.record(z.string(), AttemptSummarySchema).default({}),
});

export const RunRecordSchema = z.object({
  v: z.union([z.literal(1), z.literal(2)]),
  n: z.record(z.string(), NodeSummarySchema),
  d: z.array(z.unknown()),
  o: z.array(z.unknown()),
  x: z.array(z.unknown()).optional(),
  xn: z.number().int().nonnegative().optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** An ended run's state, from its compact record, in the shapes of the live keys. */
export interface ExpandedRun {
  readonly nodes: Map<string, NodeState>;
  readonly attempts: Map<string, AttemptRecord>;
  /** Decision records, outcomes and released effects, each as the JSON text the lists held. */
  readonly decisions: string[];
  readonly outcomes: string[];
  readonly effects: string[];
  /** Released effects the run had (also when they were not kept). */
  readonly effectCount: number;
  /** Whether outputs, guesses, inputs and effects were kept (the tenant's `keepOutputs`). */
  readonly outputsKept: boolean;
}

/**
 * Parses a compact record (`json`) of a run created at `createdAtMs`. A record that does not
 * parse is an error naming the run: no silent fallback to "empty".
 */
export function expandRunRecord(json: string, createdAtMs: number, what = 'run'): ExpandedRun {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`${what}: its compact record is not JSON: ${String(err)}`);
  }
  const parsed = RunRecordSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${what}: invalid compact record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const r = parsed.data;
  const abs = (v: number | undefined) => (v === undefined ? undefined : v + createdAtMs);
  const nodes = new Map<string, NodeState>();
  const attempts = new Map<string, AttemptRecord>();
  // v 2 leaves out the values most records would repeat (compactRun-8.lua); v 1 has them all.
  const v2 = r.v === 2;
  const orDefault = (x: string | false | undefined, dflt: string): string | undefined => (x === false ? undefined : x === undefined ? (v2 ? dflt : undefined) : x);
  for (const [nodeId, n] of Object.entries(r.n)) {
    const state = n.s ?? (v2 ? 'succeeded' : undefined);
    if (state === undefined) throw new Error(`${what}: invalid compact record: n.${nodeId}.s: missing`);
    const auth = orDefault(n.au, `${nodeId}.a1`);
    const source = orDefault(n.src, 'authoritative');
    if (state !== 'unknown') {
      nodes.set(
        nodeId,
        NodeStateSchema.parse({
          state,
          epoch: n.e,
          ...(auth === undefined ? {} : { auth }),
          ...(n.o === undefined ? {} : { output: n.o }),
          ...(source === undefined ? {} : { source }),
          ...(n.err === undefined ? {} : { error: n.err }),
          ...(n.t0 === undefined ? {} : { startedAtMs: abs(n.t0) }),
          ...(n.t1 === undefined ? {} : { finishedAtMs: abs(n.t1) }),
          closed: n.cl ?? {},
          claims: {},
          outs: {},
        }),
      );
    }
    for (const [attemptId, a] of Object.entries(n.a)) {
      const output = a.oc === 1 ? n.o : a.o;
      if (!v2 && (a.k === undefined || a.e === undefined || a.s === undefined)) {
        throw new Error(`${what}: invalid compact record: n.${nodeId}.a.${attemptId}: k, e and s are required in a v 1 record`);
      }
      attempts.set(
        attemptId,
        AttemptRecordSchema.parse({
          attemptId,
          nodeId,
          kind: a.k ?? 'authoritative',
          epoch: a.e ?? n.e,
          status: a.s ?? 'succeeded',
          assumed: a.as ?? {},
          ...(a.d === undefined ? {} : { decisionId: a.d }),
          ...(output === undefined ? {} : { output }),
          ...(a.u === undefined
            ? {}
            : { usage: { inputTokens: a.u[0], cachedInputTokens: a.u[1], outputTokens: a.u[2], ...(a.u[3] === undefined ? {} : { cacheWriteTokens: a.u[3] }) } }),
          ...(a.ue === 1 ? { usageEstimated: true } : a.u === undefined ? {} : { usageEstimated: false }),
          costNanoUsd: a.c,
          ...(a.r === undefined ? {} : { reservedNanoUsd: a.r }),
          createdAtMs: abs(a.t) ?? createdAtMs,
          ...(a.t0 === undefined ? {} : { startedAtMs: abs(a.t0) }),
          ...(a.t1 === undefined ? {} : { finishedAtMs: abs(a.t1) }),
          tries: a.n,
          ...(a.err === undefined ? {} : { error: a.err }),
          ...(a.at === undefined ? {} : { attention: a.at }),
          ...(a.atm === undefined ? {} : { attentionAtMs: abs(a.atm) }),
          ...(a.rb === undefined ? {} : { resolvedBy: a.rb }),
          ...(a.w === undefined ? {} : { workerId: a.w }),
        }),
      );
    }
  }
  const texts = (xs: readonly unknown[]) => xs.map((x) => JSON.stringify(x));
  const effects = r.x === undefined ? [] : texts(r.x);
  return {
    nodes,
    attempts,
    decisions: texts(r.d),
    outcomes: texts(r.o),
    effects,
    effectCount: r.x === undefined ? (r.xn ?? 0) : effects.length,
    outputsKept: r.x !== undefined,
  };
}
