/**
 * The narrow view of the control plane (M9) the engine uses: kill-switch and heartbeat verdicts,
 * class stage and posterior, outcome publishing. `ControlPlane` (packages/shared/src/control)
 * implements it; `heartbeatRequired: false` ignores a missing estimator heartbeat for set-ups
 * that run no estimator (kills still apply).
 */
import type { BetaParams, ClassState, ControlPlane, DependencyType, Outcome } from '@gambit/shared';

export interface SpeculationControl {
  /**
   * Why speculation of this (tenant, class) must not launch, or undefined: `kill` for a kill-switch
   * (class, tenant, global), `estimator` when no fresh estimator heartbeat says drift is watched
   * (M9 fail-safe; a WAIT `estimator_unavailable`, not `killed`).
   */
  blocked(tenant: string, classId: string): 'kill' | 'estimator' | undefined;
  /** Creates the class with its prior and the tenant's initial stage if new; returns its state. */
  classState(
    classId: string,
    init: { depType: DependencyType; k?: number; prior: BetaParams; initialStage: 'shadow' | 'canary' | 'online'; tenant: string },
  ): Promise<ClassState | undefined>;
  publishOutcome(outcome: Outcome): Promise<void>;
  /** Called with the class id, tenant or '' (global) of every new kill. */
  onKill(listener: (scope: 'global' | 'tenant' | 'class', id: string) => void): void;
}

export class ControlPlaneAdapter implements SpeculationControl {
  private readonly ensured = new Set<string>();

  constructor(
    private readonly cp: ControlPlane,
    private readonly heartbeatRequired: boolean,
  ) {}

  blocked(tenant: string, classId: string): 'kill' | 'estimator' | undefined {
    const v = this.cp.speculationBlocked(tenant, classId);
    if (!v.blocked) return undefined;
    if (v.scope !== 'heartbeat') return 'kill';
    return this.heartbeatRequired ? 'estimator' : undefined;
  }

  async classState(
    classId: string,
    init: { depType: DependencyType; k?: number; prior: BetaParams; initialStage: 'shadow' | 'canary' | 'online'; tenant: string },
  ): Promise<ClassState | undefined> {
    if (!this.ensured.has(classId)) {
      await this.cp.ensureClass(classId, {
        depType: init.depType,
        ...(init.k === undefined ? {} : { k: init.k }),
        prior: init.prior,
        initialStage: init.initialStage,
        tenant: init.tenant,
      });
      if (this.ensured.size > 100_000) this.ensured.clear();
      this.ensured.add(classId);
    }
    return this.cp.classState(classId);
  }

  async publishOutcome(outcome: Outcome): Promise<void> {
    await this.cp.publishOutcome(outcome);
  }

  onKill(listener: (scope: 'global' | 'tenant' | 'class', id: string) => void): void {
    this.cp.onKill((e) => listener(e.scope, e.id));
  }
}
