/**
 * Issue 10 item 4: per-tenant fairness of submits inside one scheduler process. A tenant that
 * sends hundreds of submits at once would otherwise have all of them in progress together, and
 * every other tenant's submit would wait behind all of their steps on the event loop and the
 * Redis connections.
 *
 * 1. Concurrency: at most `perTenant` of one tenant's submits run at a time; the rest wait in
 *    that tenant's FIFO (a promise each).
 * 2. Turns: a tenant with submits waiting (a backlog) is *backlogged*; any other is *light*.
 *    While a light tenant's submit is in progress, a backlogged tenant's submits pause at their
 *    next turn (`run` gives the work a `turn()` to await between its steps, and a waiting submit
 *    takes one before it starts): the light submit's steps then share the event loop and the
 *    connections with at most the steps the backlogged ones were already in, not with a new
 *    stream of them. A pause ends when no light submit is in progress, or after `maxPauseMs`
 *    (so a stream of light submits slows a backlog down but never stops it).
 *
 * The total work is the same; only its order changes.
 */
export interface TenantGateOptions {
  /** The longest one turn of a backlogged tenant waits for light submits (ms). */
  readonly maxPauseMs?: number;
}

/** A place in a tenant's lane of the gate (TenantGate.enter). */
export interface GateTicket {
  /** Awaited between a submit's steps: pauses while the tenant is backlogged and another tenant's submit runs. */
  readonly turn: () => Promise<void> | undefined;
  /** Gives the place back (idempotent). */
  readonly leave: () => void;
}

interface Lane {
  active: number;
  waiting: Array<() => void>;
}

export class TenantGate {
  private readonly lanes = new Map<string, Lane>();
  /** Paused turns: each re-checks when a submit ends. */
  private paused = new Set<() => void>();
  private readonly maxPauseMs: number;

  constructor(
    private readonly perTenant: number,
    opts: TenantGateOptions = {},
  ) {
    if (!Number.isInteger(perTenant) || perTenant < 1) throw new RangeError(`TenantGate: perTenant must be a positive integer, got ${perTenant}`);
    this.maxPauseMs = opts.maxPauseMs ?? 50;
    if (!(this.maxPauseMs >= 0)) throw new RangeError(`TenantGate: maxPauseMs must be non-negative, got ${opts.maxPauseMs}`);
  }

  /**
   * Runs `work` when fewer than `perTenant` of the tenant's calls are running. `work` may await
   * `turn()` between its steps: it pauses while the tenant is backlogged and another, light,
   * tenant has a submit in progress.
   */
  async run<T>(tenant: string, work: (turn: () => Promise<void> | undefined) => Promise<T>): Promise<T> {
    const ticket = await this.enter(tenant);
    try {
      return await work(ticket.turn);
    } finally {
      ticket.leave();
    }
  }

  /**
   * Takes one of the tenant's places: resolves when fewer than `perTenant` of its calls hold one
   * (in arrival order) and, if the tenant is backlogged, after its first turn. The HTTP API takes
   * the place before a submit's body is parsed and validated, so a burst of one tenant's requests
   * waits here at the cost of a parked promise each, not of their parsing. `leave()` (idempotent)
   * gives the place back; it must be called once the call is over, however it ended.
   */
  async enter(tenant: string): Promise<GateTicket> {
    let lane = this.lanes.get(tenant);
    if (lane === undefined) {
      lane = { active: 0, waiting: [] };
      this.lanes.set(tenant, lane);
    }
    const own = lane;
    if (own.active >= this.perTenant) {
      await new Promise<void>((resolve) => own.waiting.push(resolve));
      // Taken from the waiting list, so counted as active at once (no other call overtakes it).
    } else own.active++;
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      const next = own.waiting.shift();
      if (next !== undefined) next();
      else {
        own.active--;
        if (own.active === 0) this.lanes.delete(tenant);
      }
      this.wake();
    };
    try {
      await this.turn(own);
    } catch (err) {
      leave();
      throw err;
    }
    return { turn: () => (left ? undefined : this.turn(own)), leave };
  }

  /** Undefined (go on at once) unless the lane is backlogged and another lane is light and running. */
  private turn(lane: Lane): Promise<void> | undefined {
    if (!this.mustPause(lane)) return undefined;
    return new Promise<void>((resolve) => {
      const go = () => {
        clearTimeout(timer);
        this.paused.delete(check);
        resolve();
      };
      const check = () => {
        if (!this.mustPause(lane)) go();
      };
      const timer = setTimeout(go, this.maxPauseMs);
      this.paused.add(check);
    });
  }

  private mustPause(lane: Lane): boolean {
    if (lane.waiting.length === 0) return false;
    for (const other of this.lanes.values()) if (other !== lane && other.active > 0 && other.waiting.length === 0) return true;
    return false;
  }

  /** A submit ended: paused turns re-check. */
  private wake(): void {
    for (const check of [...this.paused]) check();
  }

  /** Calls of the tenant running now and waiting (for tests and logs). */
  load(tenant: string): { active: number; waiting: number } {
    const lane = this.lanes.get(tenant);
    return { active: lane?.active ?? 0, waiting: lane?.waiting.length ?? 0 };
  }
}
