/**
 * M9.5: when a kill-switch fires (class, tenant or global), in-flight speculative attempts in its
 * scope are cancelled at once. This process scans the active runs and discards every live
 * speculation in scope; other schedulers do the same when they see the kill, and the discard
 * script makes the repeats no-ops.
 */
import type { Logger } from '@gambit/shared';
import { controlKeys, type KeySpace, type RedisLike } from '@gambit/shared/redis';
import type { RunEngine } from './engine/engine.js';
import { parseClasses } from './engine/outcomes.js';
import { loadRun } from './engine/run-view.js';

export async function cancelSpeculationsInScope(
  deps: { redis: RedisLike; ks: KeySpace; engine: RunEngine; log: Logger },
  scope: 'global' | 'tenant' | 'class',
  id: string,
): Promise<number> {
  const members = await deps.redis.zrange(controlKeys(deps.ks).active, '0', '-1');
  let cancelled = 0;
  for (const m of members) {
    const i = m.indexOf(':');
    const tenant = m.slice(0, i);
    const runId = m.slice(i + 1);
    if (scope === 'tenant' && tenant !== id) continue;
    const s = await loadRun(deps.redis, deps.ks, tenant, runId);
    if (s === undefined || s.header.status !== 'running') continue;
    let here = 0;
    for (const [nodeId, n] of s.nodes) {
      if (n.spec === undefined) continue;
      if (scope === 'class' && !parseClasses(n.spec.cls).some((p) => p.classId === id)) continue;
      if (await deps.engine.discard(s, nodeId, n.spec.a, 'cancelled', '')) here++;
    }
    // A discarded speculation may leave a node ready to run for real.
    if (here > 0) await deps.engine.reconcile(tenant, runId);
    cancelled += here;
  }
  if (cancelled > 0) deps.log.info({ scope, id, cancelled }, 'kill-switch: speculations cancelled');
  return cancelled;
}
