/** M9 stage 1: importing a user's own OpenTelemetry GenAI spans (OTLP/JSON) into the trace format. */
import { ValidationError } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { type OtlpExport, importOtlp } from './otlp.js';

const s = (v: string) => ({ stringValue: v });
const i = (v: number) => ({ intValue: String(v) });
const ns = (ms: number) => String(BigInt(1_700_000_000_000 + ms) * 1_000_000n);

/** One agent run: invoke_agent wraps chat → execute_tool → chat. */
function trace(traceId: string, offsetMs: number, city: string): OtlpExport {
  const span = (spanId: string, name: string, startMs: number, endMs: number, attributes: Array<{ key: string; value: object }>, parent = 'root') => ({
    traceId,
    spanId: `${traceId}-${spanId}`,
    parentSpanId: `${traceId}-${parent}`,
    name,
    startTimeUnixNano: ns(offsetMs + startMs),
    endTimeUnixNano: ns(offsetMs + endMs),
    attributes,
  });
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: s('weather-bot') }] },
        scopeSpans: [
          {
            spans: [
              { ...span('root', 'invoke_agent weather', 0, 2000, [{ key: 'gen_ai.operation.name', value: s('invoke_agent') }]), parentSpanId: '' },
              span('c1', 'chat gpt-4o', 0, 800, [
                { key: 'gen_ai.operation.name', value: s('chat') },
                { key: 'gen_ai.provider.name', value: s('openai') },
                { key: 'gen_ai.request.model', value: s('gpt-4o') },
                { key: 'gen_ai.usage.input_tokens', value: i(1200) },
                { key: 'gen_ai.usage.cache_read.input_tokens', value: i(1024) },
                { key: 'gen_ai.usage.output_tokens', value: i(30) },
              ]),
              span('t1', 'execute_tool get_weather', 810, 1010, [
                { key: 'gen_ai.operation.name', value: s('execute_tool') },
                { key: 'gen_ai.tool.name', value: s('get_weather') },
                { key: 'gen_ai.tool.call.arguments', value: s(JSON.stringify({ units: 'C', city })) },
                { key: 'gambit.effects', value: s('none') },
              ]),
              span('c2', 'chat gpt-4o', 1020, 2000, [
                { key: 'gen_ai.operation.name', value: s('chat') },
                { key: 'gen_ai.system', value: s('openai') },
                { key: 'gen_ai.response.model', value: s('gpt-4o') },
                { key: 'gen_ai.usage.input_tokens', value: i(1300) },
                { key: 'gen_ai.usage.output_tokens', value: i(80) },
              ]),
            ],
          },
        ],
      },
    ],
  };
}

describe('OTLP/JSON importer', () => {
  it('makes one run per trace, an operation per GenAI span, and infers dependencies from time', () => {
    const runs = importOtlp([trace('bbb', 60_000, 'Paris'), trace('aaa', 0, 'Paris')]);
    expect(runs.map((r) => r.runId)).toEqual(['aaa', 'bbb']);
    const r = runs[0]!;
    expect(r.workflow).toBe('invoke_agent weather');
    expect(r.tenant).toBe('default');
    expect(r.startUnixMs).toBe(1_700_000_000_000);
    expect(r.operations.map((o) => [o.id, o.kind, o.dependencies])).toEqual([
      ['chat gpt-4o#0', 'llm', []],
      ['execute_tool get_weather#0', 'tool', ['chat gpt-4o#0']],
      ['chat gpt-4o#1', 'llm', ['execute_tool get_weather#0']],
    ]);
    const c1 = r.operations[0]!;
    expect(c1['gen_ai.usage.input_tokens']).toBe(1200);
    expect(c1['gen_ai.usage.cache_read.input_tokens']).toBe(1024);
    expect(c1.durationMs).toBe(800);
    expect(r.operations[1]!.effects).toBe('none');
    expect(r.operations[2]!['gen_ai.request.model']).toBe('gpt-4o');
  });

  it('guesses tool calls with a most_frequent predictor over earlier runs of the workflow', () => {
    const runs = importOtlp([trace('a', 0, 'Paris'), trace('b', 10_000, 'Paris'), trace('c', 20_000, 'Oslo')]);
    const toolOpp = (k: number) => runs[k]!.opportunities.find((o) => o.to === 'execute_tool get_weather#0')!;
    expect(toolOpp(0)).toMatchObject({ type: 'tool_args', guess: null, matched: false });
    // Key order of the arguments does not matter (canonical JSON, M7 tier 1).
    expect(toolOpp(1)).toMatchObject({ guess: '{"arguments":{"city":"Paris","units":"C"},"name":"get_weather"}', matched: true });
    expect(toolOpp(2)).toMatchObject({ matched: false });
    // No recorded output on the chat spans: the tool → chat edge has no opportunity.
    expect(runs[0]!.opportunities).toHaveLength(1);
  });

  it('rejects a malformed export with the path of the bad field', () => {
    const doc = trace('m', 0, 'Paris');
    (doc.resourceSpans![0]!.scopeSpans![0]!.spans![1] as { startTimeUnixNano: unknown }).startTimeUnixNano = 'soon';
    expect(() => importOtlp([doc])).toThrow(ValidationError);
    try {
      importOtlp([doc]);
    } catch (err) {
      expect((err as ValidationError).issues[0]!.path).toBe('otlp[0].resourceSpans[0].scopeSpans[0].spans[1].startTimeUnixNano');
    }
  });

  it('uses recorded gambit.* attributes for dependencies and guesses when present', () => {
    const doc = trace('x', 0, 'Rome');
    const spans = doc.resourceSpans![0]!.scopeSpans![0]!.spans!;
    spans[3]!.attributes!.push(
      { key: 'gambit.dependencies', value: { arrayValue: { values: [s('chat gpt-4o#0'), s('execute_tool get_weather#0')] } } },
      { key: 'gambit.dependency.type', value: s('lookup') },
      { key: 'gambit.speculation.guess', value: s('sunny') },
      { key: 'gambit.speculation.matched', value: { boolValue: true } },
    );
    spans[2]!.attributes!.push({ key: 'gambit.dependencies', value: { arrayValue: { values: [s('chat gpt-4o#0')] } } });
    const [r] = importOtlp([doc]);
    expect(r!.operations[2]!.dependencies).toEqual(['chat gpt-4o#0', 'execute_tool get_weather#0']);
    expect(r!.opportunities.filter((o) => o.to === 'chat gpt-4o#1')).toEqual([
      { from: 'chat gpt-4o#0', to: 'chat gpt-4o#1', type: 'lookup', guess: 'sunny', matched: true },
      { from: 'execute_tool get_weather#0', to: 'chat gpt-4o#1', type: 'lookup', guess: 'sunny', matched: true },
    ]);
  });
});

describe("Gambit's own export: outcomes that are no evidence (M5)", () => {
  /** A router u → d run whose d was speculated by the stream on u's settled label (a hit with no evidence), after a runtime WAIT whose guess missed. */
  function gambitTrace(settledHit: { evidence?: boolean }): OtlpExport {
    const traceId = 'g1';
    const span = (spanId: string, name: string, startMs: number, endMs: number, attributes: Array<{ key: string; value: object }>) => ({
      traceId,
      spanId,
      parentSpanId: 'run',
      name,
      startTimeUnixNano: ns(startMs),
      endTimeUnixNano: ns(endMs),
      attributes,
    });
    const chat = (node: string, attemptId: string, kind: string) => [
      { key: 'gen_ai.operation.name', value: s('chat') },
      { key: 'gen_ai.provider.name', value: s('openai') },
      { key: 'gen_ai.request.model', value: s('gpt-4o-mini') },
      { key: 'gambit.node.id', value: s(node) },
      { key: 'gambit.attempt.id', value: s(attemptId) },
      { key: 'gambit.attempt.kind', value: s(kind) },
      { key: 'gambit.attempt.outcome', value: s('OK') },
    ];
    const outcome = (kind: string, decisionId: string, extra: Array<{ key: string; value: object }> = []) => [
      { key: 'gambit.edge.from', value: s('u') },
      { key: 'gambit.edge.to', value: s('d') },
      { key: 'gambit.outcome.kind', value: s(kind) },
      { key: 'gambit.decision.id', value: s(decisionId) },
      ...extra,
    ];
    const evidence = settledHit.evidence === undefined ? [] : [{ key: 'gambit.outcome.evidence', value: { boolValue: settledHit.evidence } }];
    return {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: s('gambit-scheduler') }] },
          scopeSpans: [
            {
              spans: [
                {
                  ...span('run', 'gambit.run', 0, 3000, [
                    { key: 'gambit.run.id', value: s('r1') },
                    { key: 'gambit.run.status', value: s('succeeded') },
                    { key: 'gambit.workflow.edges', value: s(JSON.stringify([{ from: 'u', to: 'd', type: 'router_k_way', k: 2 }])) },
                  ]),
                  parentSpanId: '',
                },
                span('a1', 'chat gpt-4o-mini', 0, 2000, chat('u', 'u.a1', 'authoritative')),
                span('s1', 'chat gpt-4o-mini', 1000, 1500, chat('d', 'd.s2', 'speculative')),
                span('o1', 'gambit.outcome', 2000, 2000, outcome('hit', 'r1:d:stream', evidence)),
                span('o2', 'gambit.outcome', 2001, 2001, outcome('shadow_miss', 'r1:d:runtime')),
              ],
            },
          ],
        },
      ],
    };
  }

  it('takes the WAIT\'s scored guess, not the certain hit of a stream-settled speculation', () => {
    const [run] = importOtlp([gambitTrace({ evidence: false })]);
    expect(run?.opportunities).toEqual([{ from: 'u', to: 'd', type: 'router_k_way', k: 2, guess: 'decision:r1:d:runtime', matched: false }]);
    // An outcome that is evidence (no attribute, or true) is taken first, as before.
    for (const evidence of [undefined, true]) {
      const [r] = importOtlp([gambitTrace(evidence === undefined ? {} : { evidence })]);
      expect(r?.opportunities).toEqual([{ from: 'u', to: 'd', type: 'router_k_way', k: 2, guess: 'decision:r1:d:stream', matched: true }]);
    }
  });
});
