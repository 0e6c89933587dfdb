// The chaos workload (issue 11): a 6-node workflow with two speculated router edges, a staged
// tool, an idempotent tool, an irreversible tool that honours the idempotency key and one that
// does not, all on the simulated provider and the chaos effect tools (effect-tools.mjs).
//
//   classify ──(router, speculated)──▶ draft ──▶ seat (idempotent) ──▶ charge (irreversible, keyed) ──▶ ship
//       └─────(router, speculated)──▶ notify (staged message) ─────────────────────────────────────────┘
//
// `ship` is `ship_parcel`: irreversible with no idempotency key, so a crash mid-ship stops it in
// needs_attention and the campaign plays the operator (D2).

/** mulberry32: a small seeded PRNG (the seed fixes the workload and the fault schedule). */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
  };
}

export const WORKFLOW_NAME = 'chaos6';

export function chaosWorkflow() {
  const sim = (output, ttftMs) => ({ output, ttftMs, tokensPerSec: 200 });
  return {
    name: WORKFLOW_NAME,
    nodes: [
      {
        id: 'classify',
        kind: 'llm',
        provider: 'simulated',
        model: 'gpt-4o-mini',
        prompt: 'Route order {{inputs.order}}',
        expectedOutputTokens: 2,
        maxTokens: 8,
        simulate: { outcomes: [{ value: 'billing', weight: 3 }, { value: 'shipping', weight: 1 }], ttftMs: 500, tokensPerSec: 200 },
      },
      {
        id: 'draft',
        kind: 'llm',
        provider: 'simulated',
        model: 'gpt-4o-mini',
        prompt: 'Draft a {{nodes.classify.output}} reply for order {{inputs.order}}',
        expectedOutputTokens: 16,
        maxTokens: 32,
        simulate: sim('draft for {{nodes.classify.output}}', 600),
      },
      { id: 'notify', kind: 'tool', tool: 'send_message', effects: 'staged', args: { to: '{{inputs.order}}', body: 'your {{nodes.classify.output}} case is open' } },
      { id: 'seat', kind: 'tool', tool: 'reserve_seat', effects: 'idempotent', args: { seat: '{{inputs.order}}', holdMs: 100 } },
      { id: 'charge', kind: 'tool', tool: 'charge_card', args: { amountCents: '{{inputs.cents}}', confirmMs: 150 } },
      { id: 'ship', kind: 'tool', tool: 'ship_parcel', args: { parcel: '{{inputs.order}}', holdMs: 150 } },
    ],
    edges: [
      { from: 'classify', to: 'draft', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } },
      { from: 'classify', to: 'notify', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: 'billing' } },
      { from: 'draft', to: 'seat', type: 'passthrough', speculate: false },
      { from: 'seat', to: 'charge', type: 'passthrough', speculate: false },
      { from: 'charge', to: 'ship', type: 'passthrough', speculate: false },
      { from: 'notify', to: 'ship', type: 'passthrough', speculate: false },
    ],
  };
}

/** The i-th run of a campaign: its id and inputs are fixed by the seed. */
export function runSpec(seed, i, rnd) {
  return { runId: `ch${seed}-${i}`, inputs: { order: `o${seed}x${i}`, cents: String(rnd.int(100, 9999)) } };
}

export const FAULT_KINDS = [
  'kill:worker',
  'kill:scheduler',
  'kill:estimator',
  'stop:worker',
  'stop:scheduler',
  'stop:estimator',
  'redis:kill',
  'redis:client-kill',
  'partition:worker',
  'partition:scheduler',
];

/**
 * The fault schedule: every kind once (in a seeded order) while faults remain, then seeded picks.
 * Each fault has a gap before it and its own duration.
 */
export function faultSchedule(seed, count, timing) {
  const rnd = prng(seed ^ 0x5eed);
  const order = [...FAULT_KINDS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = rnd.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const out = [];
  for (let i = 0; i < count; i++) {
    const kind = i < order.length ? order[i] : rnd.pick(FAULT_KINDS);
    out.push({ i, kind, pick: rnd.next(), gapMs: rnd.int(timing.gapMinMs, timing.gapMaxMs), downMs: rnd.int(timing.downMinMs, timing.downMaxMs) });
  }
  return out;
}
