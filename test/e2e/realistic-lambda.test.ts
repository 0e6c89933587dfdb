/**
 * Issue 9 item 8: decisions at a realistic λ ($0.01/s) and several α, scored by net value against
 * never (NV = λ × seconds saved − extra dollars), end to end with real processes. Each outcome the
 * scheduler records carries its realized seconds saved, waste and guess spend, so NV is summed from
 * the system's own ledger (not from wall-clock latencies, which a loaded machine makes noisy).
 * A well-guessed edge pays at every α; a badly guessed one (free_text, prior mean 0.05) waits
 * below threshold, so it never loses money at α ≤ 0.5.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eagerTenant, http, type RunView, type Stack, startStack, waitForRun, waitForView } from './harness.js';
import { llm } from './workflows.js';

const LAMBDA = 0.01;

function chain(name: string, type: string, guess: string) {
  return {
    name,
    nodes: [
      llm('draft', 'Draft {{inputs.q}}', { output: 'x', ttftMs: 2000 }, { expectedOutputTokens: 1, maxTokens: 4 }),
      // The downstream takes real time (a sleep), so a hit saves measurable seconds.
      { id: 'send', kind: 'tool', tool: 'sleep', effects: 'none', priceUsd: 0.002, expectedDurationMs: 1000, args: { ms: 800, note: '{{nodes.draft.output}}' } },
    ],
    edges: [{ from: 'draft', to: 'send', type, predictor: { kind: 'fixed', value: guess } }],
  };
}

describe('issue 9 item 8: net value against never at λ = $0.01/s', () => {
  let stack: Stack;
  let url: string;
  beforeAll(async () => {
    stack = await startStack({ kind: 'single', url: inject('redisUrl') }, { label: 'e2e-nv', schedulers: 1, workers: 1 });
    url = stack.urls[0] as string;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  /** NV of one run from its recorded decisions and outcomes, and the runtime decision. */
  async function nvOf(tenant: string, wf: ReturnType<typeof chain>, q: string): Promise<{ nvUsd: number; decision: RunView }> {
    const r = await http<RunView>(url, 'POST', '/v1/runs', { tenant, workflow: wf, inputs: { q } });
    expect(r.status).toBe(201);
    const id = r.body.runId as string;
    const v = await waitForRun(url, tenant, id, 60_000);
    expect(v.status).toBe('succeeded');
    const decision = v.decisions.find((d: RunView) => d.phase === 'runtime' && d.node === 'send');
    // A launch's outcome is recorded once it is settled; wait for it when there was one.
    const settled = decision.action === 'SPECULATE' ? await waitForView(url, tenant, id, (x) => x.outcomes.some((o: RunView) => ['hit', 'miss', 'cancelled'].includes(o.kind))) : v;
    let nvUsd = 0;
    for (const o of settled.outcomes as RunView[]) {
      if (!['hit', 'miss', 'cancelled'].includes(o.kind)) continue;
      nvUsd += LAMBDA * o.secondsSaved - o.wasteUsd - (o.guessUsd ?? 0);
    }
    return { nvUsd, decision };
  }

  for (const alpha of [0, 0.5, 1]) {
    it(`α = ${alpha}: a well-guessed edge speculates and earns; a badly guessed one waits and loses nothing`, async () => {
      const tenant = await eagerTenant(url, `nv${String(alpha).replace('.', '')}`, { alpha, lambdaUsdPerSec: LAMBDA });
      const good = await nvOf(tenant, chain('goodwf', 'passthrough', 'x'), 'g');
      expect(good.decision).toMatchObject({ action: 'SPECULATE', reason: 'ev', lambdaUsdPerSec: LAMBDA, alpha });
      expect(good.decision.deltaTSec).toBeGreaterThan(0);
      expect(good.nvUsd).toBeGreaterThan(0);
      const bad = await nvOf(tenant, chain('badwf', 'free_text', 'wrong'), 'b');
      expect(bad.decision).toMatchObject({ action: 'WAIT', reason: 'below_threshold', alpha });
      expect(bad.nvUsd).toBe(0);
      expect(good.nvUsd + bad.nvUsd).toBeGreaterThan(0);
    }, 120_000);
  }
});
