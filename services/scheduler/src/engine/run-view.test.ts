import { describe, expect, it } from 'vitest';
import { parseHeader, traceHeaderFields, traceOfHeader } from './run-view.js';

const tp = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
const gp = `00-${'a'.repeat(32)}-${'c'.repeat(16)}-01`;

describe('run header trace context (issue 13 item 3)', () => {
  it('is one short field per carrier entry, each under the 64 bytes of the compact hash encoding, and reads back', () => {
    const fields = traceHeaderFields({ traceparent: tp, 'gambit-parent': gp });
    expect(fields).toEqual({ 'trace:traceparent': tp, 'trace:gambit-parent': gp });
    for (const v of Object.values(fields)) expect(v.length).toBeLessThanOrEqual(64);
    expect(parseHeader({ tenant: 't', runId: 'r', ...fields }).trace).toEqual({ traceparent: tp, 'gambit-parent': gp });
  });

  it('reads the one `trace` JSON field of a header written before (a run in flight across an upgrade)', () => {
    expect(traceOfHeader({ trace: JSON.stringify({ traceparent: tp }) })).toEqual({ traceparent: tp });
  });

  it('is absent when the run has no trace context', () => {
    expect(traceOfHeader({ tenant: 't', runId: 'r', inputs: '{}' })).toBeUndefined();
  });
});
