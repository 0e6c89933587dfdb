/**
 * The operator's side of `needs_attention` (issue 11 D2): resolveAttention-2.lua marks an
 * attempt that stopped in `needs_attention` as succeeded (with the output the operator gives) or
 * failed. Both keys are in the run's hash tag, so the script works on Redis Cluster.
 */
import { RedisScriptError } from '../errors.js';
import { type KeySpace, runKeys } from './keys.js';
import { callScript, defineScripts, type RedisLike } from './scripts.js';

export const ATTENTION_SCRIPT_FILES = ['resolveAttention-2.lua'] as const;

export function defineAttentionScripts(redis: RedisLike): void {
  defineScripts(redis, ATTENTION_SCRIPT_FILES);
}

export type ResolveAttentionCode = 'OK' | 'NOT_NEEDED' | 'MISSING';

export async function resolveAttention(
  redis: RedisLike,
  ks: KeySpace,
  a: {
    readonly tenant: string;
    readonly runId: string;
    readonly attemptId: string;
    readonly resolution: 'succeeded' | 'failed';
    /** The output (succeeded) or the error text (failed). */
    readonly text: string;
    readonly nowMs: number;
  },
): Promise<{ code: ResolveAttentionCode; status: string }> {
  const file = 'resolveAttention-2.lua';
  const k = runKeys(ks, a.tenant, a.runId);
  const reply = await callScript<unknown[]>(redis, file, [k.attempts, k.run], [a.attemptId, a.resolution, a.text, a.nowMs]);
  const [code, status] = reply;
  if (code === 'OK' || code === 'NOT_NEEDED' || code === 'MISSING') return { code, status: String(status) };
  throw new RedisScriptError(`${file}: unexpected reply ${JSON.stringify(reply)}`);
}
