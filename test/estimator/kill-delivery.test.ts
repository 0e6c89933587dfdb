/**
 * M9.5 kill-switch delivery across processes: ControlPlanes in separate child processes see an
 * estimator's alarm; one whose Redis connection was cut while the alarm was published honours
 * it after reconnecting (version check, the pub/sub message is lost to it); killing the
 * estimator makes every ControlPlane report `heartbeat` within the staleness window.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ControlPlane, type Outcome, silentLogger, systemClock } from '@gambit/shared';
import { type ServiceProcess, uniquePrefix } from '@gambit/testkit';
import { waitFor } from './helpers.js';
import { type ChildLine, estimatorReady, parseLines, startControlPlaneChild, startEstimator } from './procs.js';
import { startTcpProxy } from './tcp-proxy.js';

const url = inject('redisUrl');
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

function track<T extends ServiceProcess>(p: T): T {
  closers.push(() => p.stop());
  return p;
}
const lastBlocked = (p: ServiceProcess): ChildLine | undefined => parseLines(p).filter((l) => l.type === 'blocked').at(-1);

let n = 0;
const outcome = (classId: string, kind: 'hit' | 'miss'): Outcome => {
  n++;
  return {
    outcomeId: `m${n}`, decisionId: `d${n}`, tenant: 't1', workflow: 'w', runId: `r${n}`, edgeClass: classId,
    kind, wasteUsd: kind === 'miss' ? 0.001 : 0, secondsSaved: kind === 'hit' ? 1 : 0, fencingViolation: false, atMs: Date.now(),
  };
};

describe('M9.5 kill-switch delivery to schedulers in other processes', () => {
  it('all ControlPlanes pause the class on an alarm; a disconnected one catches up by the version check', async () => {
    const prefix = uniquePrefix('kill-deliver');
    const cp = new ControlPlane(url, { prefix }, systemClock, silentLogger, { pollMs: 100 });
    closers.push(() => cp.close());
    await cp.ensureClass('hot', { depType: 'passthrough', prior: { a: 180, b: 20 }, initialStage: 'online', tenant: 't1' });
    const est = track(startEstimator('est1', url, prefix));
    await estimatorReady(est);

    const u = new URL(url);
    const proxy = await startTcpProxy(u.hostname, Number(u.port));
    closers.push(() => proxy.close());
    const env = { TENANT: 't1', CLASS_ID: 'hot', POLL_MS: '250', HEARTBEAT_STALE_MS: '3000' };
    const direct = [1, 2, 3].map((i) => track(startControlPlaneChild(`cp${i}`, url, prefix, env)));
    const viaProxy = track(startControlPlaneChild('cp-proxy', `redis://127.0.0.1:${proxy.port}`, prefix, env));
    const all = [...direct, viaProxy];
    // Everyone starts unblocked (fresh heartbeat, no kill).
    await waitFor(() => all.every((p) => lastBlocked(p)?.blocked === false), 15_000, 'children unblocked');

    // History: 60 hits (M9.5: the detector compares recent outcomes with the class's own earlier
    // ones); nobody may be blocked by them.
    for (let i = 0; i < 60; i++) await cp.publishOutcome(outcome('hot', 'hit'));
    await waitFor(async () => (await cp.classState('hot', { fresh: true }))?.n === 60, 15_000, 'history applied');
    expect((await cp.classState('hot', { fresh: true }))?.stage).toBe('online');
    expect(all.every((p) => lastBlocked(p)?.blocked === false)).toBe(true);

    proxy.cut();
    for (let i = 0; i < 30; i++) await cp.publishOutcome(outcome('hot', 'miss'));
    await Promise.all(direct.map((p) => p.waitForLine((l) => l.includes('"type":"kill"') && l.includes('"scope":"class"'), 10_000)));
    await waitFor(() => direct.every((p) => lastBlocked(p)?.scope === 'class'), 5000, 'direct children blocked by class');
    for (const p of direct) expect(lastBlocked(p)).toMatchObject({ blocked: true, scope: 'class', version: 1 });
    // The cut child has not seen it: the message was published while it was disconnected.
    await new Promise((r) => setTimeout(r, 300));
    expect(parseLines(viaProxy).some((l) => l.type === 'kill')).toBe(false);

    proxy.restore();
    await viaProxy.waitForLine((l) => l.includes('"type":"kill"'), 15_000);
    await waitFor(() => lastBlocked(viaProxy)?.scope === 'class', 5000, 'proxied child blocked by class');
    expect(lastBlocked(viaProxy)?.version).toBe(1);
  });

  it('killing the estimator makes every ControlPlane report scope heartbeat; a new estimator lifts it', async () => {
    const prefix = uniquePrefix('kill-hb');
    const est = track(startEstimator('est1', url, prefix));
    await estimatorReady(est);
    const env = { TENANT: 't1', CLASS_ID: 'c', POLL_MS: '100', HEARTBEAT_STALE_MS: '1000' };
    const kids = [1, 2, 3].map((i) => track(startControlPlaneChild(`cp${i}`, url, prefix, env)));
    await waitFor(() => kids.every((p) => lastBlocked(p)?.blocked === false), 15_000, 'children unblocked');
    const killedAt = Date.now();
    await est.kill();
    await waitFor(() => kids.every((p) => lastBlocked(p)?.scope === 'heartbeat'), 10_000, 'heartbeat stale everywhere');
    for (const p of kids) {
      const l = lastBlocked(p) as ChildLine;
      // Stale within staleMs (1000) + beat period (200) + poll (100) + slack for a loaded machine.
      expect(l.t - killedAt).toBeLessThan(3000);
    }
    // A new estimator brings speculation back.
    const est2 = track(startEstimator('est2', url, prefix));
    await estimatorReady(est2);
    await waitFor(() => kids.every((p) => lastBlocked(p)?.blocked === false), 10_000, 'unblocked by the new estimator');
  });
});
