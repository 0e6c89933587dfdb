/** A small client of the scheduler's HTTP API (docs/api.md) for the demo. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`);
  }
}

export class SchedulerClient {
  constructor(private readonly baseUrl: string) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
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
    return this.request('GET', `/v1/runs/${encodeURIComponent(tenant)}/${encodeURIComponent(runId)}`);
  }

  configureTenant(tenant: string, cfg: Record<string, unknown>): Promise<unknown> {
    return this.request('PUT', `/v1/tenants/${encodeURIComponent(tenant)}/config`, cfg);
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
