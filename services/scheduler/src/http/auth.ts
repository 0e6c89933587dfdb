/**
 * API keys and the authentication hook (issue 10 item 1).
 *
 * - The operator key comes from `GAMBIT_ADMIN_KEY` (operator configuration only).
 * - Tenant keys are `gmb_` + 43 base64url characters (256 random bits), created by the operator
 *   and returned once. Only HMAC-SHA-256(key, GAMBIT_KEY_HMAC_SECRET) is stored, in the
 *   `P:{auth}:keys` hash (live keys) and the tenant's `apikeys` listing; a key is found by its
 *   HMAC and the stored HMAC is compared in constant time.
 * - Every request carries `Authorization: Bearer <key>`; the hook decorates it with
 *   `request.auth`: `{ kind: 'operator' }` or `{ kind: 'tenant', tenant }`. The tenant always
 *   comes from the key: a path or body naming another tenant answers 404 (`tenantFor`), as an
 *   unknown id does, so a tenant cannot learn whether another tenant exists.
 * - Routes marked `config: { public: true }` (health) need no key.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NotFoundError, ValidationError } from '@gambit/shared';
import { authKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden, unauthenticated } from './errors.js';

export type Auth = { readonly kind: 'operator' } | { readonly kind: 'tenant'; readonly tenant: string; readonly keyId: string };

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request (set by the auth hook before any handler runs). */
    auth: Auth;
  }
  interface FastifyContextConfig {
    /** No API key needed (health endpoints and static assets). */
    public?: boolean;
  }
}

export const TENANT_KEY_PREFIX = 'gmb_';
const TENANT_KEY_RE = /^gmb_[A-Za-z0-9_-]{43}$/;

export interface KeyRecord {
  readonly keyId: string;
  readonly tenant: string;
  readonly createdAtMs: number;
  readonly label?: string;
}

export interface KeyListing {
  readonly keyId: string;
  readonly createdAtMs: number;
  readonly revokedAtMs: number | null;
  readonly label: string | null;
}

export class KeyStore {
  private readonly hmacSecret: Buffer;
  private readonly adminDigest: Buffer;
  /** Verified keys by HMAC, reused for `cacheMs` (revocation reaches other schedulers within it). */
  private readonly cache = new Map<string, { atMs: number; rec: KeyRecord }>();
  private readonly cacheMs: number;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    opts: { adminKey: string; hmacSecret: string; cacheMs?: number },
  ) {
    this.hmacSecret = Buffer.from(opts.hmacSecret, 'utf8');
    this.adminDigest = this.digest(opts.adminKey);
    this.cacheMs = opts.cacheMs ?? 1_000;
  }

  private digest(key: string): Buffer {
    return createHmac('sha256', this.hmacSecret).update(key, 'utf8').digest();
  }

  /** Who a bearer key is, or undefined for an unknown, malformed or revoked key. */
  async verify(key: string, nowMs = Date.now()): Promise<Auth | undefined> {
    const d = this.digest(key);
    if (timingSafeEqual(d, this.adminDigest)) return { kind: 'operator' };
    if (!TENANT_KEY_RE.test(key)) return undefined;
    const hex = d.toString('hex');
    const hit = this.cache.get(hex);
    if (hit !== undefined && nowMs - hit.atMs < this.cacheMs) return { kind: 'tenant', tenant: hit.rec.tenant, keyId: hit.rec.keyId };
    const raw = await this.redis.hget(authKeys(this.ks).keys, hex);
    if (raw === null) {
      this.cache.delete(hex);
      return undefined;
    }
    const rec = JSON.parse(raw) as KeyRecord & { hmac: string };
    // The lookup was by HMAC; the stored copy is compared in constant time all the same.
    if (!timingSafeEqual(Buffer.from(rec.hmac, 'hex'), d)) return undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hex, { atMs: nowMs, rec });
    return { kind: 'tenant', tenant: rec.tenant, keyId: rec.keyId };
  }

  /** Creates a tenant key; the key itself is returned here only. */
  async create(tenant: string, label: string | undefined, nowMs = Date.now()): Promise<{ key: string; keyId: string; tenant: string; createdAtMs: number }> {
    const key = `${TENANT_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const hex = this.digest(key).toString('hex');
    const keyId = `k${hex.slice(0, 16)}`;
    const rec = { keyId, tenant, createdAtMs: nowMs, hmac: hex, ...(label === undefined ? {} : { label }) };
    const k = authKeys(this.ks);
    // The listing first: a key that verifies is always listed (and so can be revoked).
    await this.redis.hset(k.tenantKeys(tenant), keyId, JSON.stringify({ ...rec, revokedAtMs: null }));
    await this.redis.hset(k.keys, hex, JSON.stringify(rec));
    return { key, keyId, tenant, createdAtMs: nowMs };
  }

  async list(tenant: string): Promise<KeyListing[]> {
    const all = await this.redis.hgetall(authKeys(this.ks).tenantKeys(tenant));
    return Object.values(all)
      .map((j) => JSON.parse(j) as KeyListing & { hmac: string })
      .map((r) => ({ keyId: r.keyId, createdAtMs: r.createdAtMs, revokedAtMs: r.revokedAtMs ?? null, label: r.label ?? null }))
      .sort((a, b) => a.createdAtMs - b.createdAtMs || a.keyId.localeCompare(b.keyId));
  }

  /** Revokes a key: it stops verifying at once here, within `cacheMs` on other schedulers. */
  async revoke(tenant: string, keyId: string, nowMs = Date.now()): Promise<KeyListing> {
    const k = authKeys(this.ks);
    const raw = await this.redis.hget(k.tenantKeys(tenant), keyId);
    if (raw === null) throw new NotFoundError(`key ${keyId} of tenant ${tenant} not found`);
    const rec = JSON.parse(raw) as KeyRecord & { hmac: string; revokedAtMs: number | null };
    // The live entry first: once it is gone the key no longer verifies.
    await this.redis.hdel(k.keys, rec.hmac);
    this.cache.delete(rec.hmac);
    const revokedAtMs = rec.revokedAtMs ?? nowMs;
    await this.redis.hset(k.tenantKeys(tenant), keyId, JSON.stringify({ ...rec, revokedAtMs }));
    return { keyId, createdAtMs: rec.createdAtMs, revokedAtMs, label: rec.label ?? null };
  }
}

/** The bearer key of a request, or undefined. */
function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Adds the auth hook: every non-public route needs a valid key; `request.auth` says whose. */
export function installAuth(app: FastifyInstance, keys: KeyStore): void {
  app.decorateRequest('auth', undefined as never);
  app.addHook('onRequest', async (req) => {
    if (req.routeOptions.config?.public === true) return;
    const key = bearer(req);
    if (key === undefined) throw unauthenticated();
    const auth = await keys.verify(key);
    if (auth === undefined) throw unauthenticated('the API key is unknown or revoked');
    req.auth = auth;
  });
}

/** Operator-only operations (kill, revive, class internals, key management): 403 for a tenant key. */
export function requireOperator(req: FastifyRequest): void {
  if (req.auth.kind !== 'operator') throw forbidden();
}

/**
 * The tenant a request acts for. A tenant key acts for its own tenant only: naming another one
 * (in the path, the body or the query) answers 404 with `notFound`, the answer for an unknown id.
 * An operator key acts for the tenant it names, and must name one.
 */
export function tenantFor(req: FastifyRequest, named: string | undefined, notFound: () => string): string {
  const a = req.auth;
  if (a.kind === 'tenant') {
    if (named !== undefined && named !== a.tenant) throw new NotFoundError(notFound());
    return a.tenant;
  }
  if (named === undefined) throw new ValidationError([{ path: 'tenant', message: 'required with the operator key (a tenant key implies it)' }]);
  return named;
}
