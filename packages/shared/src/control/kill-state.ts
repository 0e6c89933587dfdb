/**
 * The kill-switch state (M9.5) as schedulers hold it locally, its wire form (the `kill` hash and
 * the alarm pub/sub message, both validated on receipt) and the pure functions over it: parse,
 * apply a message, list the kills one state adds over another, and the blocked verdict.
 */
import { z } from 'zod';

export const KillEntrySchema = z.object({
  reason: z.string(),
  atMs: z.number(),
  /** When the kill lapses (ms); absent = until revived. Drift kills carry their cooldown end. */
  untilMs: z.number().optional(),
  /** `operator`, `estimator` (drift alarm) or `auto` (many classes alarming together). */
  source: z.string().optional(),
  /** Who set it: the operator key's name, or `estimator`. */
  owner: z.string().optional(),
});
export type KillEntry = z.infer<typeof KillEntrySchema>;

export interface KillState {
  readonly version: number;
  readonly global?: KillEntry;
  readonly tenants: Readonly<Record<string, KillEntry>>;
  readonly classes: Readonly<Record<string, KillEntry>>;
}

export const EMPTY_KILL_STATE: KillState = { version: 0, tenants: {}, classes: {} };

export const KILL_SCOPES = ['global', 'tenant', 'class'] as const;

/** The message PUBLISHed on `alarmsChannel` with every change of the kill hash. */
export const AlarmMessageSchema = z.object({
  version: z.number().int().nonnegative(),
  action: z.enum(['kill', 'revive']),
  scope: z.enum(KILL_SCOPES),
  id: z.string(),
  reason: z.string(),
  atMs: z.number(),
});
export type AlarmMessage = z.infer<typeof AlarmMessageSchema>;

// Lua's cjson encodes an empty table as `{}`, so maps may arrive as objects only.
const EntryMapSchema = z.record(z.string(), KillEntrySchema);

/** Parses HGETALL of the kill hash. Throws a zod error on a malformed hash (fail loudly). */
export function parseKillHash(h: Record<string, string>): KillState {
  const version = h.version === undefined ? 0 : Number(h.version);
  if (!Number.isInteger(version) || version < 0) throw new Error(`kill hash: bad version ${h.version}`);
  const global = h.global === undefined ? undefined : KillEntrySchema.parse(JSON.parse(h.global));
  const tenants = h.tenants === undefined ? {} : EntryMapSchema.parse(JSON.parse(h.tenants));
  const classes = h.classes === undefined ? {} : EntryMapSchema.parse(JSON.parse(h.classes));
  return { version, ...(global === undefined ? {} : { global }), tenants, classes };
}

/** Applies one alarm message to a local state (used before the full re-read, for speed). */
export function applyAlarm(s: KillState, m: AlarmMessage): KillState {
  const entry: KillEntry = { reason: m.reason, atMs: m.atMs };
  const version = Math.max(s.version, m.version);
  if (m.scope === 'global') {
    if (m.action === 'kill') return { ...s, version, global: s.global ?? entry };
    const { global: _g, ...rest } = s;
    return { ...rest, version };
  }
  const field = m.scope === 'tenant' ? 'tenants' : 'classes';
  const map = { ...s[field] };
  if (m.action === 'kill') map[m.id] = map[m.id] ?? entry;
  else delete map[m.id];
  return { ...s, version, [field]: map };
}

export interface KillEvent {
  readonly scope: 'global' | 'tenant' | 'class';
  /** Tenant or class id; '' for global. */
  readonly id: string;
  readonly reason: string;
}

/** Kills present in `next` and not in `prev`. */
export function newKills(prev: KillState, next: KillState): KillEvent[] {
  const out: KillEvent[] = [];
  if (next.global !== undefined && prev.global === undefined) out.push({ scope: 'global', id: '', reason: next.global.reason });
  for (const [id, e] of Object.entries(next.tenants)) {
    if (prev.tenants[id] === undefined) out.push({ scope: 'tenant', id, reason: e.reason });
  }
  for (const [id, e] of Object.entries(next.classes)) {
    if (prev.classes[id] === undefined) out.push({ scope: 'class', id, reason: e.reason });
  }
  return out;
}

export type BlockScope = 'class' | 'tenant' | 'global' | 'heartbeat';
export interface BlockedVerdict {
  readonly blocked: boolean;
  readonly scope?: BlockScope;
}

/**
 * Whether an entry is in force at `nowMs`. An entry whose expiry has passed no longer blocks,
 * even before the estimator's sweep removes it from the hash (expiry is exact on every scheduler).
 */
export function killInForce(e: KillEntry | undefined, nowMs: number | undefined): boolean {
  if (e === undefined) return false;
  return e.untilMs === undefined || nowMs === undefined || nowMs < e.untilMs;
}

/**
 * Whether speculation of (tenant, class) is blocked: global, then tenant, class, heartbeat.
 * With `nowMs`, entries whose expiry has passed are ignored (see killInForce).
 */
export function blockedBy(s: KillState, tenant: string, classId: string, heartbeatFresh: boolean, nowMs?: number): BlockedVerdict {
  if (killInForce(s.global, nowMs)) return { blocked: true, scope: 'global' };
  if (killInForce(s.tenants[tenant], nowMs)) return { blocked: true, scope: 'tenant' };
  if (killInForce(s.classes[classId], nowMs)) return { blocked: true, scope: 'class' };
  if (!heartbeatFresh) return { blocked: true, scope: 'heartbeat' };
  return { blocked: false };
}
