import { describe, expect, it } from 'vitest';
import { TenantGate } from './tenant-gate.js';

describe('TenantGate (issue 10 item 4)', () => {
  it('runs at most perTenant calls of one tenant at once, in arrival order; another tenant is not held', async () => {
    const gate = new TenantGate(2);
    const order: string[] = [];
    const release: Array<() => void> = [];
    const job = (name: string) => () =>
      new Promise<string>((resolve) => {
        order.push(name);
        release.push(() => resolve(name));
      });
    const a = ['a1', 'a2', 'a3', 'a4'].map((n) => gate.run('a', job(n)));
    await Promise.resolve();
    expect(order).toEqual(['a1', 'a2']);
    expect(gate.load('a')).toEqual({ active: 2, waiting: 2 });
    const b = gate.run('b', job('b1'));
    await Promise.resolve();
    expect(order).toEqual(['a1', 'a2', 'b1']);
    release[0]?.();
    await a[0];
    await new Promise((r) => setTimeout(r, 0));
    expect(order).toEqual(['a1', 'a2', 'b1', 'a3']);
    for (let i = 1; i < 6; i++) {
      release[i]?.();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(await Promise.all([...a, b])).toEqual(['a1', 'a2', 'a3', 'a4', 'b1']);
    expect(gate.load('a')).toEqual({ active: 0, waiting: 0 });
  });

  it('a failing call frees its place', async () => {
    const gate = new TenantGate(1);
    await expect(gate.run('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run('a', () => Promise.resolve(7))).toBe(7);
  });
});
