// Derives data/token_sizes/token-quantiles.json (percentiles 0..100 of input and output token
// counts) from the Azure LLM inference trace 2023 (code, conversation) and the Mooncake FAST'25
// conversation trace, as published (see data/token_sizes/README.md for sources and licenses).
// Usage: node scripts/derive-token-quantiles.mjs [/path/to/shared/workloads]
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const root = process.argv[2] ?? '/work/shared/workloads';
const gz = (p) => gunzipSync(readFileSync(`${root}/${p}`)).toString('utf8');

function percentiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return Array.from({ length: 101 }, (_, i) => {
    const pos = ((s.length - 1) * i) / 100;
    const lo = Math.floor(pos);
    const hi = Math.ceil(pos);
    return Math.round(s[lo] + (s[hi] - s[lo]) * (pos - lo));
  });
}

function azure(file) {
  const rows = gz(file).trim().split('\n').slice(1).map((l) => l.split(','));
  return { n: rows.length, input: percentiles(rows.map((r) => Number(r[1]))), output: percentiles(rows.map((r) => Number(r[2]))) };
}

const moon = gz('mooncake_fast25/conversation_trace.jsonl.gz').trim().split('\n').map((l) => JSON.parse(l));
const seen = new Set();
let blocks = 0;
let repeated = 0;
for (const r of moon) for (const h of r.hash_ids) { blocks++; if (seen.has(h)) repeated++; else seen.add(h); }

const out = {
  note: 'Percentiles 0..100 of token counts per request; derived by packages/replay/scripts/derive-token-quantiles.mjs. See README.md for sources, licenses and attribution.',
  azure_code: azure('azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv.gz'),
  azure_conv: azure('azure_llm_inference_2023/AzureLLMInferenceTrace_conv.csv.gz'),
  mooncake_conv: {
    n: moon.length,
    input: percentiles(moon.map((r) => r.input_length)),
    output: percentiles(moon.map((r) => r.output_length)),
    /** Share of 512-token prefix blocks already seen earlier in the trace (a prompt-cache hit proxy). */
    repeatedBlockShare: repeated / blocks,
  },
};
writeFileSync(new URL('../data/token_sizes/token-quantiles.json', import.meta.url), `${JSON.stringify(out)}\n`);
console.log({ code: out.azure_code.input[50], codeOut: out.azure_code.output[50], conv: out.azure_conv.input[50], convOut: out.azure_conv.output[50], moon: out.mooncake_conv.input[50], moonOut: out.mooncake_conv.output[50], rep: out.mooncake_conv.repeatedBlockShare });
