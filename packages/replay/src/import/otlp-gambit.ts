/**
 * Gambit's own trace export read back as replay runs (issue 12 item 4: "Gambit's own OTLP export
 * imports into `gambit replay`"). A Gambit trace has one `gambit.run` span (submission to end)
 * carrying the workflow's edges (`gambit.workflow.edges`), one span per try of each attempt
 * (`chat {model}` / `execute_tool {name}` with `gambit.node.id`, `gambit.attempt.kind`,
 * `gambit.attempt.outcome`), and one `gambit.outcome` span per scored speculation.
 *
 * - Only succeeded runs are imported (a failed or cancelled run has no complete schedule).
 * - A node's operation is the try that produced its result: the authoritative try whose output
 *   was accepted (`OK`), else (a speculation hit) the accepted speculative try. Paid guesses
 *   (attempt ids `<node>.g-<upstream>`) are not operations.
 * - Dependencies are the workflow's edges. A node that ran speculatively started before its
 *   upstreams ended; its start is moved to the end of its last upstream, which is the schedule
 *   without speculation that replay compares against (M11).
 * - A node whose speculative try was not the one used (a miss: cut short, or run to its end and
 *   discarded) gets that try as its `speculative` operation (format v3, issue 9 item 8): what ran
 *   on the guess, its own model or tool, tokens and running time, which replay bills the miss
 *   from. `cancelled` when the try was aborted (`error.type`).
 * - Opportunities come from the outcomes: a hit (or shadow hit) is a matched guess, a miss (or
 *   shadow miss) an unmatched one; `cancelled` says nothing about the guess and is skipped, and
 *   so is an outcome with `gambit.outcome.evidence` false (M5: the speculation was launched on an
 *   upstream output the stream had settled, so its hit was certain, not a guess). The
 *   guess text is not exported (prompts and outputs stay out of traces), so `guess` holds the
 *   deciding record's id as an opaque token.
 */
import { DEPENDENCY_TYPES, ValidationError } from '@gambit/shared';
import { z } from 'zod';
import { type Operation, type Opportunity, type Run, type SpeculativeOperation, TRACE_FORMAT_VERSION } from '../trace.js';
import { type Op, type OtlpImportOptions, type Span, str, toOperation } from './otlp-spans.js';

const EdgesSchema = z.array(z.object({ from: z.string().min(1), to: z.string().min(1), type: z.enum(DEPENDENCY_TYPES), k: z.number().int().min(2).optional() }));

const RUN_SPAN = 'gambit.run';
const OUTCOME_SPAN = 'gambit.outcome';

export function isGambitRunSpan(s: Span): boolean {
  return s.raw.name === RUN_SPAN && s.a.has('gambit.workflow.edges');
}

function isGuessAttempt(attemptId: string | undefined): boolean {
  return attemptId !== undefined && /\.g-/.test(attemptId);
}

/** The accepted try of each node: authoritative first, else the speculative one (a hit). */
function resultSpans(spans: readonly Span[]): Map<string, Span> {
  const best = new Map<string, Span>();
  for (const s of spans) {
    const node = str(s.a.get('gambit.node.id'));
    if (node === undefined || s.a.get('gambit.attempt.outcome') !== 'OK' || isGuessAttempt(str(s.a.get('gambit.attempt.id')))) continue;
    if (str(s.a.get('gen_ai.operation.name')) === undefined) continue;
    const prev = best.get(node);
    const auth = s.a.get('gambit.attempt.kind') === 'authoritative';
    const prevAuth = prev?.a.get('gambit.attempt.kind') === 'authoritative';
    if (prev === undefined || (auth && !prevAuth) || (auth === prevAuth && s.endNs > prev.endNs)) best.set(node, s);
  }
  return best;
}

/** Each node's speculative try that was not used (the latest), keyed by node id. */
function missedSpeculativeSpans(spans: readonly Span[], chosen: ReadonlyMap<string, Span>): Map<string, Span> {
  const out = new Map<string, Span>();
  for (const s of spans) {
    const node = str(s.a.get('gambit.node.id'));
    if (node === undefined || s.a.get('gambit.attempt.kind') !== 'speculative' || isGuessAttempt(str(s.a.get('gambit.attempt.id')))) continue;
    if (str(s.a.get('gen_ai.operation.name')) === undefined || chosen.get(node) === s) continue;
    const prev = out.get(node);
    if (prev === undefined || s.endNs > prev.endNs) out.set(node, s);
  }
  return out;
}

/** A try's own operation as a trace `speculative` object. */
function speculativeOf(s: Span, node: string, runStartNs: bigint, where: string): SpeculativeOperation | undefined {
  const op = toOperation(s, node, runStartNs, where);
  if (op === undefined) return undefined;
  const cancelled = s.a.get('error.type') === 'aborted' || String(s.a.get('gambit.attempt.outcome') ?? '').startsWith('aborted');
  const { id: _id, dependencies: _deps, startMs: _start, effects: _effects, operationClass: _cls, speculative: _spec, ...rest } = op;
  return { ...rest, cancelled };
}

export function importGambitTrace(traceId: string, spans: readonly Span[], opts: OtlpImportOptions): { run: Omit<Run, 'opportunities'>; ops: Op[]; recorded: Opportunity[] } | undefined {
  const runSpan = spans.find(isGambitRunSpan);
  if (runSpan === undefined || runSpan.a.get('gambit.run.status') !== 'succeeded') return undefined;
  const where = `trace ${traceId} span ${runSpan.raw.spanId}`;
  let edges: z.infer<typeof EdgesSchema>;
  try {
    edges = EdgesSchema.parse(JSON.parse(String(runSpan.a.get('gambit.workflow.edges'))));
  } catch (err) {
    throw new ValidationError([{ path: `${where}.attributes.gambit.workflow.edges`, message: `not a JSON list of {from, to, type, k?}: ${String(err)}` }]);
  }
  const runStartNs = runSpan.startNs;
  const chosen = resultSpans(spans);
  const ops = new Map<string, Op>();
  for (const [node, s] of chosen) {
    const op = toOperation(s, node, runStartNs, `trace ${traceId} span ${s.raw.spanId}`);
    if (op !== undefined) ops.set(node, { span: s, op });
  }
  for (const [node, s] of missedSpeculativeSpans(spans, chosen)) {
    const o = ops.get(node);
    const speculative = o === undefined ? undefined : speculativeOf(s, node, runStartNs, `trace ${traceId} span ${s.raw.spanId}`);
    if (o !== undefined && speculative !== undefined) ops.set(node, { span: o.span, op: { ...o.op, speculative } });
  }
  // Dependencies from the workflow, and the non-speculative start (after the last upstream ends), in topological order.
  const incoming = new Map<string, string[]>();
  for (const e of edges) if (ops.has(e.from) && ops.has(e.to)) incoming.set(e.to, [...(incoming.get(e.to) ?? []), e.from]);
  const placed = new Map<string, Operation>();
  const place = (id: string, depth = 0): Operation | undefined => {
    const done = placed.get(id);
    if (done !== undefined) return done;
    const o = ops.get(id);
    if (o === undefined || depth > ops.size) return undefined;
    const deps = incoming.get(id) ?? [];
    let ready = 0;
    for (const d of deps) {
      const up = place(d, depth + 1);
      if (up !== undefined) ready = Math.max(ready, up.startMs + up.durationMs);
    }
    const op: Operation = { ...o.op, dependencies: deps, startMs: Math.max(o.op.startMs, ready) };
    placed.set(id, op);
    return op;
  };
  const list: Op[] = [];
  for (const [id, o] of ops) {
    const op = place(id);
    if (op !== undefined) list.push({ span: o.span, op });
  }
  if (list.length === 0) return undefined;
  list.sort((x, y) => x.op.startMs - y.op.startMs);
  const recorded: Opportunity[] = [];
  const seen = new Set<string>();
  for (const s of spans) {
    if (s.raw.name !== OUTCOME_SPAN) continue;
    const from = str(s.a.get('gambit.edge.from'));
    const to = str(s.a.get('gambit.edge.to'));
    const kind = str(s.a.get('gambit.outcome.kind'));
    // M5: an outcome with no evidence (a speculation on a stream-settled upstream output, whose
    // hit was certain) is not a guess; the WAIT's own guess of that upstream has its outcome.
    if (s.a.get('gambit.outcome.evidence') === false) continue;
    const edge = edges.find((e) => e.from === from && e.to === to);
    if (edge === undefined || from === undefined || to === undefined || !ops.has(from) || !ops.has(to) || seen.has(`${from}->${to}`)) continue;
    const matched = kind === 'hit' || kind === 'shadow_hit';
    if (!matched && kind !== 'miss' && kind !== 'shadow_miss') continue;
    seen.add(`${from}->${to}`);
    recorded.push({ from, to, type: edge.type, ...(edge.k !== undefined ? { k: edge.k } : {}), guess: `decision:${str(s.a.get('gambit.decision.id')) ?? 'unknown'}`, matched });
  }
  return {
    run: {
      v: TRACE_FORMAT_VERSION,
      runId: str(runSpan.a.get('gambit.run.id')) ?? traceId,
      tenant: str(runSpan.a.get('gambit.tenant')) ?? opts.defaultTenant ?? 'default',
      workflow: str(runSpan.a.get('gambit.workflow')) ?? 'workflow',
      startUnixMs: Number(runStartNs / 1_000_000n),
      operations: list.map((o) => o.op),
    },
    ops: list,
    recorded,
  };
}
