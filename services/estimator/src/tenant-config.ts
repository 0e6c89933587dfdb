/**
 * Per-tenant calibration settings the estimator needs (M3 λ for the canary gate, M9 overrides of
 * n_min, thresholds, cooldown), read from the tenant's config hash (fields `lambdaUsdPerSec` and
 * `calibration`, a JSON CalibrationOverrides) and cached briefly. An invalid `calibration` field
 * is logged as an error and the estimator's defaults are used (never a silent skip).
 */
import {
  type CalibrationConfig,
  type CalibrationOverrides,
  CalibrationOverridesSchema,
  type Clock,
  type Logger,
  resolveCalibration,
} from '@gambit/shared';
import { type KeySpace, type RedisLike, tenantKeys } from '@gambit/shared/redis';

export interface TenantCalibration {
  readonly cfg: CalibrationConfig;
  readonly lambdaUsdPerSec: number;
}

export class TenantConfigs {
  private readonly cache = new Map<string, { atMs: number; value: TenantCalibration }>();
  private readonly base: CalibrationConfig;

  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: { overrides?: CalibrationOverrides; defaultLambdaUsdPerSec: number; cacheMs: number },
  ) {
    this.base = resolveCalibration(opts.overrides ?? {});
  }

  defaults(): CalibrationConfig {
    return this.base;
  }

  async get(tenant: string): Promise<TenantCalibration> {
    const now = this.clock.nowMs();
    const hit = this.cache.get(tenant);
    if (hit !== undefined && now - hit.atMs < this.opts.cacheMs) return hit.value;
    let value: TenantCalibration = { cfg: this.base, lambdaUsdPerSec: this.opts.defaultLambdaUsdPerSec };
    if (tenant !== '') {
      const [lambdaRaw, calRaw] = await this.redis.hmget(tenantKeys(this.ks, tenant).config, 'lambdaUsdPerSec', 'calibration');
      const lambda = lambdaRaw === null || lambdaRaw === undefined ? Number.NaN : Number(lambdaRaw);
      let cfg = this.base;
      if (calRaw !== null && calRaw !== undefined) {
        try {
          cfg = resolveCalibration(CalibrationOverridesSchema.parse(JSON.parse(calRaw)), this.base);
        } catch (err) {
          this.log.error({ tenant, err: String(err) }, 'invalid tenant calibration config; using defaults');
        }
      }
      value = { cfg, lambdaUsdPerSec: Number.isFinite(lambda) && lambda >= 0 ? lambda : this.opts.defaultLambdaUsdPerSec };
    }
    this.cache.set(tenant, { atMs: now, value });
    return value;
  }
}
