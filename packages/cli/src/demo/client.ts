/** A small client of the scheduler's HTTP API (docs/api.md) for the demo. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
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
    if (!res.ok) throw new ApiError(res.status, parsed);
    return parsed as T;
  }

  submit(body: Record<string, unknown>): Promise<{ runId: string }> {
    return this.request('POST', '/v1/runs', body);
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
