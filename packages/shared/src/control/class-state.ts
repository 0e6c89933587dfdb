/**
 * An edge class's calibration state as read from its posterior hash (M5, M9): stage, posterior
 * and counts, and the reason of the last transition. Validated on read (the hash is written by
 * Lua scripts of another process).
 */
import { z } from 'zod';

const num = z.coerce.number();

export const ClassStateSchema = z.object({
  stage: z.enum(['shadow', 'canary', 'online', 'killed']),
  a: num.pipe(z.number().positive()),
  b: num.pipe(z.number().positive()),
  a0: num.pipe(z.number().positive()),
  b0: num.pipe(z.number().positive()),
  hits: num.pipe(z.number().int().nonnegative()),
  misses: num.pipe(z.number().int().nonnegative()),
  n: num.pipe(z.number().int().nonnegative()),
  stageReason: z.string(),
  stageVersion: num.pipe(z.number().int().nonnegative()),
  stageAtMs: num,
  killedUntilMs: num.default(0),
  depType: z.string().optional(),
  tenant: z.string().optional(),
  provisional: z.string().optional(),
  /** The class's recent hit sequence ('1' hit, oldest first; classKeys().windowBits): drift suspicion reads it (calibration/suspect.ts). */
  recent: z.string().regex(/^[01]*$/).optional(),
});
export type ClassState = z.infer<typeof ClassStateSchema>;

export function parseClassHash(h: Record<string, string>, recent?: string | null): ClassState | undefined {
  if (Object.keys(h).length === 0) return undefined;
  return ClassStateSchema.parse(recent === undefined || recent === null ? h : { ...h, recent });
}
