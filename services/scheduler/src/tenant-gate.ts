/**
 * Issue 10 item 4: per-tenant concurrency inside one scheduler process. A tenant that sends
 * hundreds of submits at once would otherwise have all of them in progress together, and every
 * other tenant's submit would wait behind all of their steps on the event loop and the Redis
 * connections. The gate lets at most `perTenant` of one tenant's submits run at a time; the rest
 * wait in that tenant's FIFO (a promise each), so another tenant's submit interleaves with at most
 * `perTenant` of them. The total work is the same; only its order changes.
 */
export class TenantGate {
  private readonly lanes = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(private readonly perTenant: number) {
    if (!Number.isInteger(perTenant) || perTenant < 1) throw new RangeError(`TenantGate: perTenant must be a positive integer, got ${perTenant}`);
  }

  /** Runs `work` when fewer than `perTenant` of the tenant's calls are running. */
  async run<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(tenant);
    if (lane === undefined) {
      lane = { active: 0, waiting: [] };
      this.lanes.set(tenant, lane);
    }
    if (lane.active >= this.perTenant) await new Promise<void>((resolve) => lane?.waiting.push(resolve));
    lane.active++;
    try {
      return await work();
    } finally {
      lane.active--;
      const next = lane.waiting.shift();
      if (next !== undefined) next();
      else if (lane.active === 0) this.lanes.delete(tenant);
    }
  }

  /** Calls of the tenant running now and waiting (for tests and logs). */
  load(tenant: string): { active: number; waiting: number } {
    const lane = this.lanes.get(tenant);
    return { active: lane?.active ?? 0, waiting: lane?.waiting.length ?? 0 };
  }
}
