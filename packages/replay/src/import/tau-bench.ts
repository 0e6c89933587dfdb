/**
 * Importer: tau-bench airline trajectories (sierra-research/tau-bench @ 59a200c6, MIT (c) 2024
 * Sierra; copied to packages/replay/data/tau_bench_airline) → replay runs (trace.ts).
 *
 * Each (task, trial) trajectory becomes one run of the workflow `airline-agent`:
 * - every assistant message is an LLM operation (model gpt-4o): its input is the whole
 *   conversation so far (system prompt included), its output the message text or its tool
 *   calls, both counted with the core's tokenizer (countTokens); its duration comes from the
 *   core's per-model latency profile (ttft + output / tokens-per-second). The previous turn's
 *   prompt is an OpenAI prompt-cache prefix (cached in 128-token blocks once it is ≥ 1,024).
 * - every tool call is a tool operation depending on the LLM turn that issued it; the next LLM
 *   turn depends on the previous turn and on every tool result since.
 * - user turns are not operations of the agent workflow (no speculation can save a human's
 *   time); they leave no gap, which if anything overstates the share of time speculation saves.
 * Opportunities (M5 type `tool_args`): LLM turn → tool call, with the guess = the majority vote
 * of the other trials of the same task at the same tool-call position (ties: the earliest
 * trial's call), or null when no other trial got that far.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { countTokens, expectedLlmDurationMs, operationClassOf } from '@gambit/shared';
import type { Operation, Opportunity, Run } from '../trace.js';
import { RunSchema, TRACE_FORMAT_VERSION } from '../trace.js';
import { canonicalJson } from './canonical.js';

export interface TauMessage {
  readonly role: 'system' | 'user' | 'assistant' | 'tool';
  readonly content?: string | null;
  readonly content_ref?: string;
  readonly tool_calls?: ReadonlyArray<{ readonly id: string; readonly name: string; readonly arguments: unknown }>;
  readonly tool_call_id?: string;
  readonly name?: string;
}

export interface TauRecord {
  readonly task_id: number;
  readonly trial: number;
  readonly reward: number;
  readonly messages: readonly TauMessage[];
}

export interface TauData {
  readonly records: TauRecord[];
  readonly systemPrompt: string;
}

const DATA_DIR = new URL('../../data/tau_bench_airline/', import.meta.url);

/** Loads the copied trajectories and the shared system prompt. */
export function loadTauBenchData(dir: URL = DATA_DIR): TauData {
  const text = gunzipSync(readFileSync(new URL('tau_airline_gpt4o.jsonl.gz', dir))).toString('utf8');
  const records = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TauRecord);
  const systemPrompt = readFileSync(new URL('airline_policy_system_prompt.md', dir), 'utf8');
  return { records, systemPrompt };
}

/** Read-only airline tools (M6 effects `none`); every other tool writes and is `irreversible`. */
export const TAU_READ_TOOLS: ReadonlySet<string> = new Set([
  'get_user_details',
  'get_reservation_details',
  'search_direct_flight',
  'search_onestop_flight',
  'list_all_airports',
  'calculate',
  'think',
]);

/** Assumed tool durations (the data set has no timing): reads 200 ms, writes 400 ms, `think` 5 ms. */
export function defaultTauToolDurationMs(tool: string): number {
  if (tool === 'think') return 5;
  return TAU_READ_TOOLS.has(tool) ? 200 : 400;
}

export interface TauImportOptions {
  readonly tenant?: string;
  readonly workflow?: string;
  /** Start of the first run; runs are spaced `spacingMs` apart, trial-major (all tasks of trial 0 first). */
  readonly baseUnixMs?: number;
  readonly spacingMs?: number;
  readonly model?: string;
  readonly provider?: string;
  readonly toolDurationMs?: (tool: string) => number;
}

/** The canonical text of a tool call (name and arguments, keys sorted): what is guessed and matched (M7 tier 1). */
export function toolCallKey(call: { name: string; arguments: unknown }): string {
  return canonicalJson({ name: call.name, arguments: call.arguments });
}

function callKeys(rec: TauRecord): string[] {
  return rec.messages.flatMap((m) => (m.tool_calls ?? []).map((c) => toolCallKey(c)));
}

/** Majority vote over the other trials' calls at `position` (ties: earliest trial); null when none. */
export function majorityVote(others: readonly (readonly string[])[], position: number): string | null {
  const counts = new Map<string, number>();
  let best: string | null = null;
  let bestCount = 0;
  for (const calls of others) {
    const c = calls[position];
    if (c === undefined) continue;
    const n = (counts.get(c) ?? 0) + 1;
    counts.set(c, n);
    if (n > bestCount) {
      best = c;
      bestCount = n;
    }
  }
  return best;
}

/** Text of a message as it appears in the next prompt (role, content, tool calls). */
function messageText(m: TauMessage, systemPrompt: string): string {
  if (m.role === 'system') return systemPrompt;
  const calls = (m.tool_calls ?? []).map((c) => toolCallKey(c)).join('\n');
  return `${m.role}: ${m.content ?? ''}${calls === '' ? '' : `\n${calls}`}`;
}

/** OpenAI prompt caching: the previous prompt's prefix, in 128-token blocks, once it is ≥ 1,024 tokens. */
function cachedPrefixTokens(previousPromptTokens: number): number {
  return previousPromptTokens >= 1024 ? Math.floor(previousPromptTokens / 128) * 128 : 0;
}

/** Converts every trajectory to a run; see the module header for the mapping. */
export function importTauBench(data: TauData, opts: TauImportOptions = {}): Run[] {
  const tenant = opts.tenant ?? 'tau-bench';
  const workflow = opts.workflow ?? 'airline-agent';
  const model = opts.model ?? 'gpt-4o';
  const provider = opts.provider ?? 'openai';
  const agentClass = operationClassOf({ kind: 'llm', provider, model, system: data.systemPrompt, prompt: 'airline agent turn' });
  const base = opts.baseUnixMs ?? Date.UTC(2024, 5, 1);
  const spacing = opts.spacingMs ?? 600_000;
  const toolMs = opts.toolDurationMs ?? defaultTauToolDurationMs;
  const byTask = new Map<number, TauRecord[]>();
  for (const r of data.records) {
    const list = byTask.get(r.task_id) ?? [];
    list.push(r);
    byTask.set(r.task_id, list);
  }
  const keysOf = new Map<TauRecord, string[]>(data.records.map((r) => [r, callKeys(r)]));
  const taskIds = [...byTask.keys()].sort((a, b) => a - b);
  const ordered = [...data.records].sort((a, b) => a.trial - b.trial || a.task_id - b.task_id);
  return ordered.map((rec) => {
    const others = (byTask.get(rec.task_id) ?? []).filter((o) => o !== rec).map((o) => keysOf.get(o) ?? []);
    const operations: Operation[] = [];
    const opportunities: Opportunity[] = [];
    let promptTokens = 0; // tokens of the conversation so far
    let previousPrompt = 0;
    let lastLlm: Operation | undefined;
    let pendingTools: Operation[] = [];
    let clockMs = 0;
    let turn = 0;
    let position = 0;
    for (const m of rec.messages) {
      if (m.role === 'assistant') {
        const deps = [...(lastLlm !== undefined ? [lastLlm.id] : []), ...pendingTools.map((t) => t.id)];
        const calls = m.tool_calls ?? [];
        const outText = calls.length > 0 ? calls.map((c) => toolCallKey(c)).join('\n') + (m.content ? `\n${m.content}` : '') : (m.content ?? '');
        const outputTokens = countTokens(outText);
        const cached = cachedPrefixTokens(previousPrompt);
        const llm: Operation = {
          id: `llm-${turn++}`,
          kind: 'llm',
          'gen_ai.provider.name': provider,
          'gen_ai.request.model': model,
          dependencies: deps,
          startMs: clockMs,
          durationMs: Math.round(expectedLlmDurationMs(model, outputTokens)),
          'gen_ai.usage.input_tokens': promptTokens,
          'gen_ai.usage.cache_read.input_tokens': Math.min(cached, promptTokens),
          'gen_ai.usage.output_tokens': outputTokens,
          effects: 'none',
          // M4: every turn of the agent runs the same prompt template (the airline policy).
          operationClass: agentClass,
        };
        operations.push(llm);
        previousPrompt = promptTokens;
        clockMs = llm.startMs + llm.durationMs;
        pendingTools = [];
        lastLlm = llm;
        let toolEnd = clockMs;
        for (const c of calls) {
          const key = toolCallKey(c);
          const tool: Operation = {
            id: `tool-${position}`,
            kind: 'tool',
            'gen_ai.tool.name': c.name,
            dependencies: [llm.id],
            startMs: clockMs,
            durationMs: toolMs(c.name),
            'gen_ai.usage.input_tokens': 0,
            'gen_ai.usage.cache_read.input_tokens': 0,
            'gen_ai.usage.output_tokens': 0,
            effects: TAU_READ_TOOLS.has(c.name) ? 'none' : 'irreversible',
            // M4: a tool call's class is its tool, whatever position of the loop it runs at.
            operationClass: operationClassOf({ kind: 'tool', tool: c.name }, '-'),
          };
          operations.push(tool);
          pendingTools.push(tool);
          toolEnd = Math.max(toolEnd, tool.startMs + tool.durationMs);
          const guess = majorityVote(others, position);
          opportunities.push({
            from: llm.id,
            to: tool.id,
            type: 'tool_args',
            edgeClass: 'agent->tool',
            guess,
            actual: key,
            matched: guess === key,
          });
          position++;
        }
        clockMs = toolEnd;
      }
      promptTokens += countTokens(messageText(m, data.systemPrompt));
    }
    return RunSchema.parse({
      v: TRACE_FORMAT_VERSION,
      runId: `task${rec.task_id}-trial${rec.trial}`,
      tenant,
      workflow,
      startUnixMs: base + (rec.trial * taskIds.length + taskIds.indexOf(rec.task_id)) * spacing,
      operations,
      opportunities,
    });
  });
}

/** Share of tool calls whose majority-vote guess matched exactly (README: ~40%). */
export function majorityVoteHitRate(runs: readonly Run[]): { calls: number; hits: number; noGuess: number; rate: number } {
  let calls = 0;
  let hits = 0;
  let noGuess = 0;
  for (const r of runs)
    for (const o of r.opportunities) {
      calls++;
      if (o.matched) hits++;
      if (o.guess === null) noGuess++;
    }
  return { calls, hits, noGuess, rate: calls === 0 ? 0 : hits / calls };
}
