/** M9.5 kill-switch state: parse, apply alarm messages, new kills, blocked verdict order. Pure. */
import { describe, expect, it } from 'vitest';
import { applyAlarm, blockedBy, EMPTY_KILL_STATE, newKills, parseKillHash } from './kill-state.js';
import { HeartbeatTracker } from './heartbeat.js';

describe('M9.5 kill state', () => {
  it('parses the hash written by the Lua scripts, including cjson empty tables', () => {
    const s = parseKillHash({ version: '4', tenants: '{}', classes: '{"c1":{"reason":"drift","atMs":5,"untilMs":9}}', recent: '[]' });
    expect(s).toEqual({ version: 4, tenants: {}, classes: { c1: { reason: 'drift', atMs: 5, untilMs: 9 } } });
    expect(parseKillHash({})).toEqual(EMPTY_KILL_STATE);
    expect(() => parseKillHash({ version: '1', classes: '{"c1":{"atMs":5}}' })).toThrow();
  });
  it('applies kill and revive messages and reports only new kills', () => {
    const a = applyAlarm(EMPTY_KILL_STATE, { version: 1, action: 'kill', scope: 'class', id: 'c1', reason: 'drift', atMs: 1 });
    const b = applyAlarm(a, { version: 2, action: 'kill', scope: 'global', id: '', reason: 'op', atMs: 2 });
    expect(newKills(EMPTY_KILL_STATE, b).map((e) => `${e.scope}:${e.id}`)).toEqual(['global:', 'class:c1']);
    expect(newKills(a, b).map((e) => e.scope)).toEqual(['global']);
    const c = applyAlarm(b, { version: 3, action: 'revive', scope: 'class', id: 'c1', reason: 'cooldown', atMs: 3 });
    expect(c.classes).toEqual({});
    expect(c.version).toBe(3);
    expect(newKills(b, c)).toEqual([]);
  });
  it('blocks by global, then tenant, then class, then heartbeat', () => {
    const s = { version: 3, global: { reason: 'g', atMs: 1 }, tenants: { t1: { reason: 't', atMs: 1 } }, classes: { c1: { reason: 'c', atMs: 1 } } };
    expect(blockedBy(s, 't1', 'c1', true)).toEqual({ blocked: true, scope: 'global' });
    const { global: _g, ...noGlobal } = s;
    expect(blockedBy(noGlobal, 't1', 'c1', true).scope).toBe('tenant');
    expect(blockedBy(noGlobal, 't2', 'c1', true).scope).toBe('class');
    expect(blockedBy(noGlobal, 't2', 'c2', false).scope).toBe('heartbeat');
    expect(blockedBy(noGlobal, 't2', 'c2', true)).toEqual({ blocked: false });
  });
});

describe('M9.5 heartbeat freshness', () => {
  it('is judged by advance on the observer clock, so a skewed or frozen beat goes stale', () => {
    const hb = new HeartbeatTracker(1000);
    expect(hb.fresh(0)).toBe(false);
    // First sight: fresh only if close to the observer's clock.
    hb.observe({ e1: '10000' }, 10_500);
    expect(hb.fresh(10_500)).toBe(true);
    // The beat stops advancing: stale after staleMs even if its value looks "in the future".
    hb.observe({ e1: '10000' }, 11_400);
    expect(hb.fresh(11_400)).toBe(true);
    expect(hb.fresh(11_600)).toBe(false);
    hb.observe({ e1: '10001' }, 12_000);
    expect(hb.fresh(12_900)).toBe(true);
    // A clean shutdown removes the entry: stale at once.
    hb.observe({}, 12_950);
    expect(hb.fresh(12_950)).toBe(false);
    // An old entry of a dead estimator is not fresh on first sight.
    const hb2 = new HeartbeatTracker(1000);
    hb2.observe({ old: '1000' }, 50_000);
    expect(hb2.fresh(50_000)).toBe(false);
  });
});
