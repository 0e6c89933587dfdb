/**
 * The Metrics interface on the OpenTelemetry SDK, read through the ops listener as Prometheus
 * text (issue 12 item 1): money counted to the nano-dollar, the GenAI histograms with their
 * conventional attributes, the tenant label capped, and /healthz, /readyz answering within their
 * deadline even when a check hangs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import type { DecisionRecord, Outcome } from '../schemas/records.js';
import { quietTelemetryConfig } from './config.js';
import { Readiness, runningCheck } from './health.js';
import { BoundedLabel } from './metrics.js';
import { startOpsServer } from './ops-server.js';
import { initTelemetry } from './setup.js';

/** Prometheus text -> value of the sample whose name and labels match. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

const decision = (tenant: string, action: 'SPECULATE' | 'WAIT', reason: DecisionRecord['reason']): DecisionRecord =>
  ({ tenant, action, reason, stage: 'online', phase: 'runtime' }) as DecisionRecord;
const outcome = (kind: Outcome['kind'], wasteNano: number, secondsSaved: number): Outcome =>
  ({ tenant: 'acme', kind, wasteUsd: wasteNano / 1e9, secondsSaved }) as Outcome;

describe('metrics through the ops listener', () => {
  const tel = initTelemetry({ ...quietTelemetryConfig('gambit-test'), metrics: { push: [], intervalMs: 60_000, maxTenants: 2 } }, { instanceId: 'm-1' });
  let hang = false;
  const readiness = new Readiness(
    [
      runningCheck('consumer', () => true),
      { name: 'slow', check: () => (hang ? new Promise<void>(() => {}) : undefined) },
    ],
    300,
  );
  const opsP = startOpsServer({ host: '127.0.0.1', port: 0, prometheus: tel.prometheus, readiness, log: silentLogger, identity: { id: 'm-1' } });
  afterAll(async () => {
    await (await opsP).close();
    await tel.shutdown();
  });
  const get = async (path: string) => {
    const ops = await opsP;
    const res = await fetch(`http://127.0.0.1:${ops.port}${path}`);
    return { status: res.status, text: await res.text() };
  };

  it('counts decisions, outcomes and billed dollars exactly, with GenAI histograms', async () => {
    const m = tel.metrics;
    m.decision(decision('acme', 'SPECULATE', 'ev'));
    m.decision(decision('acme', 'WAIT', 'below_threshold'));
    m.decision(decision('acme', 'WAIT', 'below_threshold'));
    // Waste amounts whose float dollars are not exact: the counter is still exact in nano-dollars.
    m.outcome(outcome('miss', 123_456_789, 0));
    m.outcome(outcome('miss', 1, 0));
    m.outcome(outcome('hit', 0, 1.25));
    for (const cost of [7, 999_999_999, 333]) {
      m.attemptBilled({ attemptKind: 'speculative', op: { kind: 'llm', provider: 'simulated', model: 'gpt-4o-mini' }, result: 'ok', usage: { inputTokens: 100, cachedInputTokens: 0, outputTokens: 20 }, costNanoUsd: cost, durationSec: 0.3 });
    }
    m.attemptFailed({ attemptKind: 'authoritative', op: { kind: 'tool', tool: 'kv_lookup' }, errorType: 'PROVIDER_UNAVAILABLE', durationSec: 0.01 });
    m.outcomeApplied(outcome('hit', 0, 2), 0.01);
    const { status, text } = await get('/metrics');
    expect(status).toBe(200);
    expect(sample(text, 'gambit_decisions_total', { gambit_decision_action: 'WAIT', gambit_decision_reason: 'below_threshold' })).toBe(2);
    expect(sample(text, 'gambit_decisions_total', { gambit_decision_action: 'SPECULATE' })).toBe(1);
    expect(sample(text, 'gambit_speculation_outcomes_total', { gambit_outcome_kind: 'miss' })).toBe(2);
    expect(sample(text, 'gambit_speculation_waste_nano_usd_total', { gambit_outcome_kind: 'miss' })).toBe(123_456_790);
    expect(sample(text, 'gambit_speculation_saved_seconds_total', { gambit_outcome_kind: 'hit' })).toBe(1.25);
    expect(sample(text, 'gambit_spend_nano_usd_total', { gambit_attempt_kind: 'speculative' })).toBe(1_000_000_339);
    expect(sample(text, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input', gen_ai_request_model: 'gpt-4o-mini', gen_ai_operation_name: 'chat' })).toBe(300);
    expect(sample(text, 'gen_ai_client_token_usage_count', { gen_ai_token_type: 'output' })).toBe(3);
    expect(sample(text, 'gen_ai_client_operation_duration_count', { gen_ai_operation_name: 'execute_tool', error_type: 'PROVIDER_UNAVAILABLE' })).toBe(1);
    expect(sample(text, 'gambit_speculation_saved_nano_usd_total')).toBe(20_000_000);
    expect(text).toContain('service_name="gambit-test"');
  });

  it('caps the tenant label: tenants beyond the cap are counted as _other', async () => {
    for (const t of ['t1', 't2', 't3', 't4']) tel.metrics.decision(decision(t, 'WAIT', 'stage'));
    const { text } = await get('/metrics');
    // maxTenants 2: acme (first test) and t1 keep their label; t2..t4 are _other.
    expect(sample(text, 'gambit_decisions_total', { gambit_tenant: 't1', gambit_decision_reason: 'stage' })).toBe(1);
    expect(sample(text, 'gambit_decisions_total', { gambit_tenant: '_other', gambit_decision_reason: 'stage' })).toBe(3);
    expect(sample(text, 'gambit_decisions_total', { gambit_tenant: 't3' })).toBeUndefined();
    expect(tel.metrics.tenants()).toEqual(['acme', 't1']);
    const b = new BoundedLabel(0);
    expect(b.of('x')).toBe('_other');
  });

  it('/healthz answers alive; /readyz is 200 when every check passes and 503 within its deadline when one hangs', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200 });
    const ok = await get('/readyz');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.text)).toMatchObject({ status: 'ready', id: 'm-1', checks: { consumer: { ok: true }, slow: { ok: true } } });
    hang = true;
    const t0 = Date.now();
    const bad = await get('/readyz');
    const tookMs = Date.now() - t0;
    expect(bad.status).toBe(503);
    expect(JSON.parse(bad.text).checks.slow).toEqual({ ok: false, error: 'slow: no answer within 300 ms' });
    expect(tookMs).toBeGreaterThanOrEqual(290);
    expect((await get('/nope')).status).toBe(404);
  });
});
