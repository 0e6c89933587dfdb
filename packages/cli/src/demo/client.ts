/** A small client of the scheduler's HTTP API (docs/api.md) for the demo. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    /** The answer's `Retry-After`, in seconds, when it had one. */
    readonly retryAfterSec?: number,
  ) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

/**
 * Authenticates every request (docs/security.md): with the tenant's key when the request names a
 * tenant whose key it holds (the body's `tenant`, or `tenant` given), else with `key`.
 */
export class SchedulerClient {
  private readonly tenantKeys = new Map<string, string>();

  constructor(
    private readonly baseUrl: string,
    private readonly key: string,
  ) {}

  /** Creates a tenant key with this client's (operator) key and uses it for that tenant from now on. */
  async createTenantKey(tenant: string, label?: string): Promise<{ key: string; keyId: string }> {
    const r = await this.request<{ key: string; keyId: string }>('POST', `/v1/admin/tenants/${encodeURIComponent(tenant)}/keys`, label === undefined ? {} : { label });
    this.tenantKeys.set(tenant, r.key);
    return r;
  }

  async request<T>(method: string, path: string, body?: unknown, tenant?: string): Promise<T> {
    const named = tenant ?? (body !== null && typeof body === 'object' ? (body as { tenant?: unknown }).tenant : undefined);
    const key = (typeof named === 'string' ? this.tenantKeys.get(named) : undefined) ?? this.key;
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (!res.ok) {
      const retryAfter = Number(res.headers.get('retry-after') ?? Number.NaN);
      throw new ApiError(res.status, parsed, Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined);
    }
    return parsed as T;
  }

  /** Submits answered 429 (admission) or 503 (nothing stored) and tried again, by status. */
  readonly submitRetries = { 429: 0, 503: 0 };

  /**
   * POST /v1/runs. A 429 (the tenant's admission limits) or a 503 (the scheduler could not write
   * the run in time; docs/api.md: nothing was stored) is tried again after the answer's
   * `Retry-After`, or a backoff doubling from 100 ms to 2 s, up to `maxTries` in all; any other
   * error, or the last try's, is thrown.
   */
  async submit(body: Record<string, unknown>, maxTries = 8): Promise<{ runId: string }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request('POST', '/v1/runs', body);
      } catch (err) {
        if (!(err instanceof ApiError) || (err.status !== 429 && err.status !== 503) || attempt >= maxTries) throw err;
        this.submitRetries[err.status]++;
        const after = err.retryAfterSec;
        const ms = after !== undefined ? after * 1000 : Math.min(2000, 100 * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, ms * (0.75 + Math.random() / 2)));
      }
    }
  }

  run(tenant: string, runId: string): Promise<RunView> {
    return this.request('GET', `/v1/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(runId)}`, undefined, tenant);
  }

  configureTenant(tenant: string, cfg: Record<string, unknown>): Promise<unknown> {
    return this.request('PUT', `/v1/tenants/${encodeURIComponent(tenant)}/config`, cfg, tenant);
  }
}

/** The fields of GET /v1/runs/:tenant/:runId the demo reads. */
export interface RunView {
  status: 'running' | 'succeeded' | 'failed' | 'cancelled';
  createdAtMs: number;
  finishedAtMs: number | null;
  reason: string | null;
  nodes: Record<string, { state: string; source: string | null; attempts: Array<{ kind: string; status: string }> }>;
  decisions: Array<{ action: string; reason: string; phase: string }>;
  outcomes: Array<{ kind: string; wasteUsd: number; secondsSaved: number }>;
  effects: unknown[];
  dollars: { total: { usd: number }; speculative: { usd: number }; wasted: { usd: number } };
}
