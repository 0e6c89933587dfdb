/**
 * Writes a tiny, valid GGUF v3 model file for tests of the local (node-llama-cpp) provider: a
 * llama-architecture transformer with random F32 weights from a seeded PRNG and a small
 * SentencePiece ("llama") vocabulary (control tokens, the 256 byte-fallback tokens, single
 * characters, and the prefixes of about a hundred words). It loads and generates real tokens in llama.cpp; the text is gibberish.
 *
 * Format (little-endian): magic "GGUF", version u32 = 3, tensor count u64, metadata count u64,
 * metadata key/values, tensor infos (name, n_dims, dims with ne[0] fastest, type, offset),
 * padding to `general.alignment` (32), then each tensor's data at an aligned offset.
 */
import { writeFile } from 'node:fs/promises';

const ALIGNMENT = 32;

/** GGUF metadata value types. */
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
type T = typeof T;

/** SentencePiece token types (llama.cpp `llama_token_type`). */
const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

type MetaValue =
  | { t: T['U32'] | T['I32'] | T['F32']; v: number }
  | { t: T['BOOL']; v: boolean }
  | { t: T['STRING']; v: string }
  | { t: T['ARRAY']; elem: T['STRING']; v: readonly string[] }
  | { t: T['ARRAY']; elem: T['F32'] | T['I32']; v: readonly number[] };

export interface TinyGgufOptions {
  /** Seed of the weights' PRNG (default 1). */
  readonly seed?: number;
  readonly embeddingLength?: number;
  readonly blockCount?: number;
  readonly headCount?: number;
  readonly headCountKv?: number;
  readonly feedForwardLength?: number;
  readonly contextLength?: number;
}

export interface TinyGgufInfo {
  readonly path: string;
  readonly bytes: number;
  readonly vocabSize: number;
  readonly wordTokens: readonly string[];
}

/** Word pieces of the vocabulary (SentencePiece marks a leading space with U+2581). */
const WORDS = (
  'the a an of to and in is it that for on with as was at by be this are or from not have one ' +
  'route billing refund ticket order user answer check valid yes no plan step tool model token ' +
  'stream price cost value data result label field report reply draft review status update ' +
  'quick slow good bad new old next first last more less many few all some any each other ' +
  'red green blue time day week year work call send read write open close start stop run wait'
).split(' ');

const CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?:;\'"-()[]{}#*/'];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;
  private push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v | 0);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  bool(v: boolean): void {
    this.push(Buffer.from([v ? 1 : 0]));
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  raw(b: Buffer): void {
    this.push(b);
  }
  pad(): void {
    const rem = this.length % ALIGNMENT;
    if (rem !== 0) this.push(Buffer.alloc(ALIGNMENT - rem));
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeMeta(w: ByteWriter, key: string, m: MetaValue): void {
  w.str(key);
  w.u32(m.t);
  switch (m.t) {
    case T.U32:
      w.u32(m.v);
      return;
    case T.I32:
      w.i32(m.v);
      return;
    case T.F32:
      w.f32(m.v);
      return;
    case T.BOOL:
      w.bool(m.v);
      return;
    case T.STRING:
      w.str(m.v);
      return;
    case T.ARRAY:
      w.u32(m.elem);
      w.u64(m.v.length);
      for (const e of m.v) {
        if (m.elem === T.STRING) w.str(e as string);
        else if (m.elem === T.F32) w.f32(e as number);
        else w.i32(e as number);
      }
      return;
  }
}

interface Tensor {
  readonly name: string;
  /** ne[0] first: the fastest-varying dimension (a row's length). */
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/** Builds the GGUF bytes of a tiny random llama model. */
export function buildTinyLlamaGguf(opts: TinyGgufOptions = {}): { bytes: Buffer; vocabSize: number; wordTokens: string[] } {
  const nEmbd = opts.embeddingLength ?? 64;
  const nLayer = opts.blockCount ?? 2;
  const nHead = opts.headCount ?? 4;
  const nHeadKv = opts.headCountKv ?? 2;
  const nFf = opts.feedForwardLength ?? 128;
  const nCtx = opts.contextLength ?? 512;
  const headDim = nEmbd / nHead;
  const rand = mulberry32(opts.seed ?? 1);

  // Vocabulary: <unk>, <s>, </s>, 256 byte tokens, then word pieces.
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_BYTE);
  }
  // Pieces: single characters, then every prefix of every "▁word", so SentencePiece's
  // merge-by-score can build whole words from characters (a longer piece scores higher).
  const firstPiece = tokens.length;
  const wordTokens = [...new Set(WORDS)].map((w) => `\u2581${w}`);
  const pieces = new Set<string>(['\u2581', ...CHARS]);
  for (const w of wordTokens) for (let i = 2; i <= w.length; i++) pieces.add(w.slice(0, i));
  for (const piece of pieces) {
    tokens.push(piece);
    types.push(TOKEN_NORMAL);
  }
  const nVocab = tokens.length;
  const scores = tokens.map((t, i) => (i < firstPiece ? 0 : -10 + t.length));
  const isWord = new Set(wordTokens);

  const randn = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
    return a;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const w = (rows: number, cols: number) => randn(rows * cols, 1 / Math.sqrt(cols));

  // Why: only word tokens get output weights, so generation yields readable word pieces
  // rather than control or stray byte tokens (their logits stay at 0, below most words').
  const output = new Float32Array(nVocab * nEmbd);
  for (let v = firstPiece; v < nVocab; v++) {
    if (!isWord.has(tokens[v]!)) continue;
    for (let j = 0; j < nEmbd; j++) output[v * nEmbd + j] = (rand() * 2 - 1) * 2;
  }

  const tensors: Tensor[] = [{ name: 'token_embd.weight', dims: [nEmbd, nVocab], data: randn(nEmbd * nVocab, 1) }];
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, dims: [nEmbd], data: ones(nEmbd) },
      { name: `${p}attn_q.weight`, dims: [nEmbd, nEmbd], data: w(nEmbd, nEmbd) },
      { name: `${p}attn_k.weight`, dims: [nEmbd, headDim * nHeadKv], data: w(headDim * nHeadKv, nEmbd) },
      { name: `${p}attn_v.weight`, dims: [nEmbd, headDim * nHeadKv], data: w(headDim * nHeadKv, nEmbd) },
      { name: `${p}attn_output.weight`, dims: [nEmbd, nEmbd], data: w(nEmbd, nEmbd) },
      { name: `${p}ffn_norm.weight`, dims: [nEmbd], data: ones(nEmbd) },
      { name: `${p}ffn_gate.weight`, dims: [nEmbd, nFf], data: w(nFf, nEmbd) },
      { name: `${p}ffn_up.weight`, dims: [nEmbd, nFf], data: w(nFf, nEmbd) },
      { name: `${p}ffn_down.weight`, dims: [nFf, nEmbd], data: w(nEmbd, nFf) },
    );
  }
  tensors.push(
    { name: 'output_norm.weight', dims: [nEmbd], data: ones(nEmbd) },
    { name: 'output.weight', dims: [nEmbd, nVocab], data: output },
  );

  const meta: [string, MetaValue][] = [
    ['general.architecture', { t: T.STRING, v: 'llama' }],
    ['general.name', { t: T.STRING, v: 'gambit-tiny-random' }],
    ['general.alignment', { t: T.U32, v: ALIGNMENT }],
    ['general.file_type', { t: T.U32, v: 0 }], // ALL_F32
    ['llama.context_length', { t: T.U32, v: nCtx }],
    ['llama.embedding_length', { t: T.U32, v: nEmbd }],
    ['llama.block_count', { t: T.U32, v: nLayer }],
    ['llama.feed_forward_length', { t: T.U32, v: nFf }],
    ['llama.attention.head_count', { t: T.U32, v: nHead }],
    ['llama.attention.head_count_kv', { t: T.U32, v: nHeadKv }],
    ['llama.rope.dimension_count', { t: T.U32, v: headDim }],
    ['llama.rope.freq_base', { t: T.F32, v: 10000 }],
    ['llama.attention.layer_norm_rms_epsilon', { t: T.F32, v: 1e-5 }],
    ['llama.vocab_size', { t: T.U32, v: nVocab }],
    ['tokenizer.ggml.model', { t: T.STRING, v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: T.ARRAY, elem: T.STRING, v: tokens }],
    ['tokenizer.ggml.scores', { t: T.ARRAY, elem: T.F32, v: scores }],
    ['tokenizer.ggml.token_type', { t: T.ARRAY, elem: T.I32, v: types }],
    ['tokenizer.ggml.unknown_token_id', { t: T.U32, v: 0 }],
    ['tokenizer.ggml.bos_token_id', { t: T.U32, v: 1 }],
    ['tokenizer.ggml.eos_token_id', { t: T.U32, v: 2 }],
    ['tokenizer.ggml.add_bos_token', { t: T.BOOL, v: true }],
    ['tokenizer.ggml.add_eos_token', { t: T.BOOL, v: false }],
  ];

  const out = new ByteWriter();
  out.raw(Buffer.from('GGUF', 'ascii'));
  out.u32(3);
  out.u64(tensors.length);
  out.u64(meta.length);
  for (const [k, v] of meta) writeMeta(out, k, v);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    out.str(t.name);
    out.u32(t.dims.length);
    for (const d of t.dims) out.u64(d);
    out.u32(0); // GGML_TYPE_F32
    out.u64(offset);
    offsets.push(offset);
    const size = t.data.byteLength;
    offset += Math.ceil(size / ALIGNMENT) * ALIGNMENT;
  }
  out.pad();
  const dataStart = out.length;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i]!;
    if (out.length - dataStart !== offsets[i]) throw new Error(`gguf: tensor ${t.name} misaligned`);
    out.raw(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    out.pad();
  }
  return { bytes: out.toBuffer(), vocabSize: nVocab, wordTokens };
}

/** Writes a tiny random llama GGUF model to `path` (a few hundred KB). */
export async function writeTinyLlamaGguf(path: string, opts: TinyGgufOptions = {}): Promise<TinyGgufInfo> {
  const { bytes, vocabSize, wordTokens } = buildTinyLlamaGguf(opts);
  await writeFile(path, bytes);
  return { path, bytes: bytes.length, vocabSize, wordTokens };
}
