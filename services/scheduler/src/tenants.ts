/**
 * Tenant configuration (M3 dial and λ, M5 posterior mode and priors per type and class, M6
 * disclosure policy, M9 initial stage and calibration overrides, M10 budget), stored in the
 * tenant's `config` hash. Money is stored
 * as integer nano-USD; dollars only at the API.
 */
import {
  type CalibrationOverrides,
  nanoToUsd,
  type PosteriorMode,
  type TenantConfigBody,
  type TenantPriors,
  TenantPriorsSchema,
  usdToNano,
} from '@gambit/shared';
import { type KeySpace, type RedisLike, tenantKeys } from '@gambit/shared/redis';

export interface TenantConfig {
  readonly alpha: number;
  readonly lambdaUsdPerSec: number;
  readonly budgetNanoUsd: number | undefined;
  readonly posteriorMode: PosteriorMode;
  readonly allowDisclosure: boolean;
  readonly initialStage: 'shadow' | 'canary' | 'online';
  readonly calibration: CalibrationOverrides;
  /** M5: priors and posterior modes per dependency type and edge class (issue 9 item 7). */
  readonly priors: TenantPriors;
  /** Issue 13 item 3: an ended run's compact record keeps inputs, outputs, guesses and effects (default true). */
  readonly keepOutputs: boolean;
  /** Issue 10 item 9: the tenant's own retention of ended runs, seconds (capped by its `maxRetentionSec` limit). */
  readonly retentionSec: number | undefined;
}

export interface TenantDefaults {
  readonly alpha: number;
  readonly lambdaUsdPerSec: number;
  readonly initialStage: 'shadow' | 'canary' | 'online';
}

export class TenantStore {
  private readonly cache = new Map<string, { atMs: number; cfg: TenantConfig }>();

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly defaults: TenantDefaults,
    /** How long a read is reused; a change takes effect on the next decision after it (M3). */
    private readonly cacheMs = 200,
  ) {}

  async get(tenant: string, nowMs = Date.now()): Promise<TenantConfig> {
    const hit = this.cache.get(tenant);
    if (hit !== undefined && nowMs - hit.atMs < this.cacheMs) return hit.cfg;
    const h = await this.redis.hgetall(tenantKeys(this.ks, tenant).config);
    const cfg: TenantConfig = {
      alpha: h.alpha !== undefined ? Number(h.alpha) : this.defaults.alpha,
      lambdaUsdPerSec: h.lambdaUsdPerSec !== undefined ? Number(h.lambdaUsdPerSec) : this.defaults.lambdaUsdPerSec,
      budgetNanoUsd: h.budgetNanoUsd !== undefined ? Number(h.budgetNanoUsd) : undefined,
      posteriorMode: h.posteriorMode !== undefined ? (JSON.parse(h.posteriorMode) as PosteriorMode) : { kind: 'mean' },
      allowDisclosure: h.allowDisclosure === '1',
      initialStage: (h.initialStage as TenantConfig['initialStage'] | undefined) ?? this.defaults.initialStage,
      calibration: h.calibration !== undefined ? (JSON.parse(h.calibration) as CalibrationOverrides) : {},
      priors: h.priors !== undefined ? TenantPriorsSchema.parse(JSON.parse(h.priors)) : {},
      // On unless the tenant turned it off: a client that reads its run's result after the run
      // ended must find it (the fold follows the end within a second).
      keepOutputs: h.keepOutputs !== '0',
      retentionSec: h.retentionSec !== undefined ? Number(h.retentionSec) : undefined,
    };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenant, { atMs: nowMs, cfg });
    return cfg;
  }

  /** Stores the given fields (others unchanged) and returns the resulting configuration. */
  async put(tenant: string, body: TenantConfigBody): Promise<TenantConfig> {
    const fields: Record<string, string> = {};
    if (body.alpha !== undefined) fields.alpha = String(body.alpha);
    if (body.lambdaUsdPerSec !== undefined) fields.lambdaUsdPerSec = String(body.lambdaUsdPerSec);
    if (body.budgetUsd !== undefined) fields.budgetNanoUsd = String(usdToNano(body.budgetUsd));
    if (body.posteriorMode !== undefined) fields.posteriorMode = JSON.stringify(body.posteriorMode);
    if (body.allowDisclosure !== undefined) fields.allowDisclosure = body.allowDisclosure ? '1' : '0';
    if (body.initialStage !== undefined) fields.initialStage = body.initialStage;
    if (body.calibration !== undefined) fields.calibration = JSON.stringify(body.calibration);
    if (body.keepOutputs !== undefined) fields.keepOutputs = body.keepOutputs ? '1' : '0';
    if (body.retentionSec !== undefined) fields.retentionSec = String(body.retentionSec);
    if (Object.keys(fields).length > 0) await this.redis.hset(tenantKeys(this.ks, tenant).config, fields);
    this.cache.delete(tenant);
    return this.get(tenant);
  }

  /** M5: replaces the tenant's priors (validated by the route); takes effect on the next decision. */
  async putPriors(tenant: string, priors: TenantPriors): Promise<TenantConfig> {
    await this.redis.hset(tenantKeys(this.ks, tenant).config, { priors: JSON.stringify(TenantPriorsSchema.parse(priors)) });
    this.cache.delete(tenant);
    return this.get(tenant);
  }

  async budget(tenant: string): Promise<{ reservedNanoUsd: number; spentNanoUsd: number }> {
    const h = await this.redis.hmget(tenantKeys(this.ks, tenant).budget, 'reservedNanoUsd', 'spentNanoUsd');
    return { reservedNanoUsd: Number(h[0] ?? 0), spentNanoUsd: Number(h[1] ?? 0) };
  }
}

/** The configuration as the API shows it (dollars). */
export function tenantConfigView(cfg: TenantConfig): Record<string, unknown> {
  return {
    alpha: cfg.alpha,
    lambdaUsdPerSec: cfg.lambdaUsdPerSec,
    budgetUsd: cfg.budgetNanoUsd === undefined ? null : nanoToUsd(cfg.budgetNanoUsd),
    budgetNanoUsd: cfg.budgetNanoUsd ?? null,
    posteriorMode: cfg.posteriorMode,
    allowDisclosure: cfg.allowDisclosure,
    initialStage: cfg.initialStage,
    calibration: cfg.calibration,
    keepOutputs: cfg.keepOutputs,
    retentionSec: cfg.retentionSec ?? null,
  };
}
