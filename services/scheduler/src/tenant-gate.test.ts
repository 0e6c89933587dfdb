import { describe, expect, it } from 'vitest';
import { TenantGate } from './tenant-gate.js';

const tick = () => new Promise((r) => setTimeout(r, 0));

/** A call that records its start and waits to be released by name. */
function recorder() {
  const order: string[] = [];
  const release = new Map<string, () => void>();
  const job = (name: string) => () =>
    new Promise<string>((resolve) => {
      order.push(name);
      release.set(name, () => resolve(name));
    });
  return { order, release: (name: string) => release.get(name)?.(), job };
}

describe('TenantGate (issue 10 item 4)', () => {
  it('runs at most perTenant calls of one tenant at once, in arrival order; another tenant is not held', async () => {
    const gate = new TenantGate(2, { maxPauseMs: 60_000 });
    const r = recorder();
    const a = ['a1', 'a2', 'a3', 'a4'].map((n) => gate.run('a', r.job(n)));
    await tick();
    expect(r.order).toEqual(['a1', 'a2']);
    expect(gate.load('a')).toEqual({ active: 2, waiting: 2 });
    const b = gate.run('b', r.job('b1'));
    await tick();
    expect(r.order).toEqual(['a1', 'a2', 'b1']);
    // a is backlogged and b's submit is in progress: a's next waits for it, not for a turn of a.
    r.release('a1');
    await a[0];
    await tick();
    expect(r.order).toEqual(['a1', 'a2', 'b1']);
    expect(gate.load('a')).toEqual({ active: 2, waiting: 1 });
    r.release('b1');
    await b;
    await tick();
    expect(r.order).toEqual(['a1', 'a2', 'b1', 'a3']);
    for (const n of ['a2', 'a3']) r.release(n);
    await tick();
    expect(r.order).toEqual(['a1', 'a2', 'b1', 'a3', 'a4']);
    r.release('a4');
    expect(await Promise.all(a)).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(gate.load('a')).toEqual({ active: 0, waiting: 0 });
  });

  it("a backlogged tenant pauses at its turns while another's submit runs, at most maxPauseMs each; never for its own", async () => {
    const gate = new TenantGate(1, { maxPauseMs: 40 });
    const steps: string[] = [];
    const work = (name: string, hold?: Promise<void>) => async (turn: () => Promise<void> | undefined) => {
      steps.push(`${name}:1`);
      await hold;
      await turn();
      steps.push(`${name}:2`);
      return name;
    };
    // Alone, a's backlog runs through without pausing for its own submits.
    const alone = await Promise.all(['x1', 'x2', 'x3'].map((n) => gate.run('x', work(n))));
    expect(alone).toEqual(['x1', 'x2', 'x3']);
    expect(steps).toEqual(['x1:1', 'x1:2', 'x2:1', 'x2:2', 'x3:1', 'x3:2']);
    steps.length = 0;
    let releaseA: () => void = () => undefined;
    const holdA = new Promise<void>((r) => {
      releaseA = r;
    });
    const a = [gate.run('a', work('a1', holdA)), gate.run('a', work('a2'))];
    await tick();
    let releaseB: () => void = () => undefined;
    const b = gate.run('b', (turn) => work('b1', new Promise<void>((r) => (releaseB = r)))(turn));
    await tick();
    releaseA();
    await tick();
    // a1 reached its turn while b1 runs and a2 waits: it pauses.
    expect(steps).toEqual(['a1:1', 'b1:1']);
    const t0 = Date.now();
    await a[0];
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
    expect(steps).toEqual(['a1:1', 'b1:1', 'a1:2']);
    releaseB();
    expect(await Promise.all([...a, b])).toEqual(['a1', 'a2', 'b1']);
  });

  it('a failing call frees its place', async () => {
    const gate = new TenantGate(1);
    await expect(gate.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run('a', () => Promise.resolve(7))).toBe(7);
  });

  it('enter/leave: a place held outside run (the HTTP API takes it before parsing); leave is idempotent and frees one place', async () => {
    const gate = new TenantGate(1);
    const first = await gate.enter('a');
    let second: { leave: () => void } | undefined;
    const entering = gate.enter('a').then((t) => {
      second = t;
      return t;
    });
    await tick();
    expect(second).toBeUndefined();
    expect(gate.load('a')).toEqual({ active: 1, waiting: 1 });
    first.leave();
    first.leave();
    await entering;
    expect(second).toBeDefined();
    // The second leave of the first ticket did not free the second's place.
    expect(gate.load('a')).toEqual({ active: 1, waiting: 0 });
    let third = false;
    const thirdEntering = gate.enter('a').then((t) => {
      third = true;
      return t;
    });
    await tick();
    expect(third).toBe(false);
    second?.leave();
    (await thirdEntering).leave();
    expect(gate.load('a')).toEqual({ active: 0, waiting: 0 });
    // After leave, a ticket's turn never pauses.
    expect(first.turn()).toBeUndefined();
  });
});
