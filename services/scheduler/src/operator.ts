/**
 * The operator's view of the control plane (M9, M9.5): kills with an owner, a reason and an
 * optional expiry, revives, one class's calibration state, and the lists of classes and kills
 * (docs/api.md). An operator kill never touches a class's stage or posterior, and a kill of a
 * class that does not exist is refused with 404 naming the class.
 */
import {
  type ClassState,
  type ControlPlane,
  credibleInterval,
  DEFAULT_CALIBRATION,
  driftSuspicion,
  type KillBody,
  type KillEntry,
  killInForce,
  type KillState,
  parseKillHash,
  NotFoundError,
  parseClassHash,
} from '@gambit/shared';
import { classKeys, controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import { decodeCursor, encodeCursor } from './cursor.js';

export interface KillView {
  readonly scope: 'global' | 'tenant' | 'class';
  /** Tenant or class id; '' for global. */
  readonly id: string;
  readonly reason: string;
  readonly owner: string | null;
  readonly source: string | null;
  readonly atMs: number;
  /** When the kill lapses; null = until revived. */
  readonly untilMs: number | null;
  /** False once `untilMs` has passed (the estimator's sweep then removes it). */
  readonly inForce: boolean;
}

export interface ClassView extends ClassState {
  readonly classId: string;
  /** Posterior mean of the hit probability (M5). */
  readonly pMean: number;
  /** Equal-tailed 90% credible interval of the hit probability. */
  readonly credible: { readonly level: number; readonly lo: number; readonly hi: number };
  /** Drift-detector state (M9.5): the sliding hit/miss window and Page-Hinkley's statistics. */
  readonly detector: {
    readonly window: { readonly n: number; readonly hits: number };
    readonly pageHinkley: { readonly n: number; readonly mean: number; readonly cum: number; readonly max: number };
  };
  /**
   * Drift suspicion (calibration/suspect.ts) on the class's window at the default settings and the
   * α ≤ 0.5 level: whether decisions read the posterior since the estimated change point, and
   * that segment (outcomes, hits).
   */
  readonly suspicion: { readonly suspect: boolean; readonly stat: number; readonly since: number; readonly hits: number };
  readonly blocked: { readonly blocked: boolean; readonly scope?: string };
  readonly kill: KillView | null;
}

export interface OperatorDeps {
  readonly cp: ControlPlane;
  readonly redis: RedisLike;
  readonly ks: KeySpace;
  readonly nowMs: () => number;
  /** REQUIRE_ESTIMATOR_HEARTBEAT: whether a stale estimator heartbeat blocks speculation here. */
  readonly heartbeatRequired: boolean;
}

function killView(scope: KillView['scope'], id: string, e: KillEntry, nowMs: number): KillView {
  return {
    scope,
    id,
    reason: e.reason,
    owner: e.owner ?? null,
    source: e.source ?? null,
    atMs: e.atMs,
    untilMs: e.untilMs ?? null,
    inForce: killInForce(e, nowMs),
  };
}

function entryOf(s: KillState, scope: KillView['scope'], id: string, nowMs: number): KillView | null {
  const e = scope === 'global' ? s.global : scope === 'tenant' ? s.tenants[id] : s.classes[id];
  return e === undefined ? null : killView(scope, id, e, nowMs);
}

/** The class id's tenant: the first `/`-separated part (edgeClassId is tenant/workflow/from->to). */
export function tenantOfClass(classId: string, st?: ClassState): string {
  if (st?.tenant !== undefined && st.tenant !== '') return st.tenant;
  const i = classId.indexOf('/');
  return i < 0 ? '' : classId.slice(0, i);
}

export class OperatorService {
  constructor(private readonly deps: OperatorDeps) {}

  /** M9.5 kill. Answers the kill-switch version and the entry as stored. */
  async kill(b: KillBody, owner: string): Promise<{ version: number; kill: KillView | null }> {
    const opts = { owner, ...(b.expiresInSec === undefined ? {} : { expiresInMs: b.expiresInSec * 1000 }) };
    const cp = this.deps.cp;
    let version: number;
    if (b.scope === 'global') version = await cp.killGlobal(b.reason, opts);
    else if (b.scope === 'tenant') version = await cp.killTenant(b.tenant ?? '', b.reason, opts);
    else version = await cp.killClass(b.classId ?? '', b.reason, opts);
    const id = b.scope === 'global' ? '' : b.scope === 'tenant' ? (b.tenant ?? '') : (b.classId ?? '');
    return { version, kill: entryOf(await this.killHash(), b.scope, id, this.deps.nowMs()) };
  }

  async revive(b: KillBody): Promise<{ version: number }> {
    const target = b.scope === 'global' ? { scope: 'global' as const } : b.scope === 'tenant' ? { scope: 'tenant' as const, tenant: b.tenant ?? '' } : { scope: 'class' as const, classId: b.classId ?? '' };
    if (target.scope === 'class' && (await this.deps.cp.classState(target.classId, { fresh: true })) === undefined)
      throw new NotFoundError(`class "${target.classId}" does not exist`);
    return { version: await this.deps.cp.revive(target, b.reason) };
  }

  /**
   * The kill hash as stored (the truth; the local copy may hold an entry applied from the alarm
   * message, which carries no owner or expiry).
   */
  private async killHash(): Promise<KillState> {
    return parseKillHash(await this.deps.redis.hgetall(controlKeys(this.deps.ks).kill));
  }

  /** Every kill entry (global, tenants, classes by id). */
  async kills(): Promise<KillView[]> {
    const s = await this.killHash();
    const now = this.deps.nowMs();
    const out: KillView[] = [];
    if (s.global !== undefined) out.push(killView('global', '', s.global, now));
    for (const id of Object.keys(s.tenants).sort()) out.push(killView('tenant', id, s.tenants[id] as KillEntry, now));
    for (const id of Object.keys(s.classes).sort()) out.push(killView('class', id, s.classes[id] as KillEntry, now));
    return out;
  }

  /** GET /v1/kills: filtered, paged by position in the ordered list. */
  async listKills(q: { scope?: KillView['scope'] | undefined; tenant?: string | undefined; limit: number; cursor?: string | undefined }): Promise<{ kills: KillView[]; nextCursor: string | null }> {
    const all = (await this.kills()).filter((k) => {
      if (q.scope !== undefined && k.scope !== q.scope) return false;
      if (q.tenant !== undefined) {
        if (k.scope === 'global') return true;
        if (k.scope === 'tenant') return k.id === q.tenant;
        return tenantOfClass(k.id) === q.tenant;
      }
      return true;
    });
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, 'cursor').k;
    const start = after === undefined ? 0 : all.findIndex((k) => `${k.scope}:${k.id}` > String(after));
    const from = start < 0 ? all.length : start;
    const page = all.slice(from, from + q.limit);
    const last = page.at(-1);
    return { kills: page, nextCursor: from + q.limit < all.length && last !== undefined ? encodeCursor({ k: `${last.scope}:${last.id}` }) : null };
  }

  /** One class's full view; 404 naming it when it does not exist. */
  async classInfo(classId: string): Promise<ClassView> {
    const v = (await this.classViews([classId]))[0];
    if (v === undefined) throw new NotFoundError(`class "${classId}" does not exist`);
    return v;
  }

  private async classViews(ids: readonly string[]): Promise<ClassView[]> {
    if (ids.length === 0) return [];
    // Classes live in different cluster slots: one command each, sent concurrently.
    const [kills, res] = await Promise.all([
      this.killHash(),
      Promise.all(
        ids.map((id) => Promise.all([this.deps.redis.hgetall(classKeys(this.deps.ks, id).posterior), this.deps.redis.lrange(classKeys(this.deps.ks, id).window, 0, -1)])),
      ),
    ]);
    const out: ClassView[] = [];
    ids.forEach((classId, i) => {
      const [h, win] = res[i] ?? [{}, []];
      const st = parseClassHash(h);
      if (st === undefined) return;
      const tenant = tenantOfClass(classId, st);
      const ci = credibleInterval({ a: st.a, b: st.b }, 0.9);
      const n = (f: string) => (h[f] === undefined ? 0 : Number(h[f]));
      out.push({
        classId,
        ...st,
        pMean: st.a / (st.a + st.b),
        credible: { level: 0.9, lo: ci.lo, hi: ci.hi },
        detector: {
          window: { n: win.length, hits: win.filter((x) => x === '1').length },
          pageHinkley: { n: n('phN'), mean: n('phMean'), cum: n('phCum'), max: n('phMax') },
        },
        suspicion: driftSuspicion(win.join(''), st.a / (st.a + st.b), DEFAULT_CALIBRATION.suspect),
        blocked: this.blocked(tenant, classId),
        kill: entryOf(kills, 'class', classId, this.deps.nowMs()),
      });
    });
    return out;
  }

  /** The verdict speculation of the class gets on this scheduler (see ControlPlaneAdapter). */
  private blocked(tenant: string, classId: string): { blocked: boolean; scope?: string } {
    const v = this.deps.cp.speculationBlocked(tenant, classId);
    return v.blocked && v.scope === 'heartbeat' && !this.deps.heartbeatRequired ? { blocked: false } : v;
  }

  /** GET /v1/classes: by class id, filtered by tenant, stage and kill. */
  async listClasses(q: { tenant?: string | undefined; stage?: string | undefined; killed?: 'true' | 'false' | undefined; limit: number; cursor?: string | undefined }): Promise<{ classes: ClassView[]; nextCursor: string | null }> {
    const after = q.cursor === undefined ? undefined : String(decodeCursor(q.cursor, 'cursor').c);
    let ids = (await this.deps.redis.smembers(controlKeys(this.deps.ks).classes)).sort();
    if (q.tenant !== undefined) ids = ids.filter((id) => tenantOfClass(id) === q.tenant);
    if (after !== undefined) ids = ids.filter((id) => id > after);
    const out: ClassView[] = [];
    let i = 0;
    // Filters on stored state: read in batches until the page is full.
    while (out.length < q.limit && i < ids.length) {
      const batch = ids.slice(i, i + Math.max(q.limit, 50));
      i += batch.length;
      for (const v of await this.classViews(batch)) {
        if (q.stage !== undefined && v.stage !== q.stage) continue;
        if (q.killed !== undefined && (v.kill?.inForce === true) !== (q.killed === 'true')) continue;
        if (out.length < q.limit) out.push(v);
        else break;
      }
    }
    const last = out.at(-1);
    const more = out.length === q.limit && last !== undefined && ids.some((id) => id > last.classId);
    return { classes: out, nextCursor: more && last !== undefined ? encodeCursor({ c: last.classId }) : null };
  }
}
