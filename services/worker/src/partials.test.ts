/** M8 streaming re-estimation: partial output events are throttled, ordered, and end with the final text. */
import { type AdvanceEvent, ManualClock, silentLogger } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import type { AdvanceSink } from './events.js';
import { PartialPublisher, SEQ_PER_TRY } from './partials.js';

class ArraySink implements AdvanceSink {
  readonly events: AdvanceEvent[] = [];
  async publish(ev: AdvanceEvent): Promise<void> {
    this.events.push(ev);
  }
}

const ref = { tenant: 't', runId: 'r', nodeId: 'n', attemptId: 'a' };

describe('PartialPublisher (M8)', () => {
  it('sends at most one event per interval unless enough deltas arrived, then the final text', async () => {
    const sink = new ArraySink();
    const clock = new ManualClock(1000);
    const p = new PartialPublisher(sink, ref, 1, { minIntervalMs: 100, minDeltas: 5 }, () => clock.nowMs(), silentLogger);
    let text = '';
    for (let i = 0; i < 12; i++) {
      text += `w${i} `;
      p.onDelta(text);
      clock.advance(10);
    }
    await p.finish(`${text}end`);
    const seen = sink.events.map((e) => (e.type === 'partial' ? [e.seq, e.text] : []));
    // Delta 1 (first event, interval elapsed), delta 6 and 11 (5 deltas each), then the final text.
    expect(seen.map(([seq]) => seq)).toEqual([0, 1, 2, 3]);
    expect(seen[0]?.[1]).toBe('w0 ');
    expect(seen[1]?.[1]).toBe('w0 w1 w2 w3 w4 w5 ');
    expect(seen.at(-1)?.[1]).toBe(`${text}end`);
  });

  it('does not repeat the final text, and numbers a retry after the previous try', async () => {
    const sink = new ArraySink();
    const p = new PartialPublisher(sink, ref, 2, { minIntervalMs: 0, minDeltas: 1 }, () => 0, silentLogger);
    p.onDelta('abc');
    await p.finish('abc');
    expect(sink.events).toEqual([{ type: 'partial', ...ref, text: 'abc', seq: SEQ_PER_TRY }]);
  });

  it('a failing sink loses only that event', async () => {
    let n = 0;
    const events: AdvanceEvent[] = [];
    const sink: AdvanceSink = {
      async publish(ev) {
        if (n++ === 0) throw new Error('redis down');
        events.push(ev);
      },
    };
    const p = new PartialPublisher(sink, ref, 1, { minIntervalMs: 0, minDeltas: 1 }, () => 0, silentLogger);
    p.onDelta('a');
    p.onDelta('ab');
    await p.finish('abc');
    expect(events.map((e) => (e.type === 'partial' ? e.text : ''))).toEqual(['ab', 'abc']);
  });
});
