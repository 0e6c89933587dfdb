/**
 * Registered workflows, by name per tenant (POST/GET /v1/workflows), in the tenant's
 * `workflows` hash. Definitions are validated with parseWorkflow before they are stored.
 */
import type { Workflow } from '@gambit/shared';
import { type KeySpace, type RedisLike, tenantKeys } from '@gambit/shared/redis';

export class WorkflowRegistry {
  constructor(
    private readonly redis: RedisLike,
    private readonly ks: KeySpace,
  ) {}

  async put(tenant: string, wf: Workflow): Promise<void> {
    await this.redis.hset(tenantKeys(this.ks, tenant).workflows, wf.name, JSON.stringify(wf));
  }

  /** The stored definition (already validated), or undefined. */
  async get(tenant: string, name: string): Promise<unknown> {
    const raw = await this.getJson(tenant, name);
    return raw === undefined ? undefined : (JSON.parse(raw) as unknown);
  }

  /** The stored definition as its JSON text, or undefined. */
  async getJson(tenant: string, name: string): Promise<string | undefined> {
    const raw = await this.redis.hget(tenantKeys(this.ks, tenant).workflows, name);
    return raw ?? undefined;
  }

  async list(tenant: string): Promise<Array<{ name: string; version: number; nodes: number; edges: number }>> {
    const all = await this.redis.hgetall(tenantKeys(this.ks, tenant).workflows);
    return Object.values(all)
      .map((json) => JSON.parse(json) as Workflow)
      .map((wf) => ({ name: wf.name, version: wf.version, nodes: wf.nodes.length, edges: wf.edges.length }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
