// Baseline consumer of the drift benchmark: the estimator's read/ack loop (XREADGROUP COUNT
// BATCH BLOCK, then XACK of the batch) with no validation and no Lua update, so the ratio
// isolates what the estimator's per-outcome work costs.
import { Redis } from 'ioredis';

const { REDIS_URL, STREAM, BATCH = '100' } = process.env;
const r = new Redis(REDIS_URL);
let stop = false;
process.on('SIGTERM', () => {
  stop = true;
});
try {
  await r.xgroup('CREATE', STREAM, 'estimators', '0', 'MKSTREAM');
} catch (err) {
  if (!String(err).includes('BUSYGROUP')) throw err;
}
process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
while (!stop) {
  const res = await r.xreadgroup('GROUP', 'estimators', 'raw', 'COUNT', Number(BATCH), 'BLOCK', 200, 'STREAMS', STREAM, '>');
  const entries = res?.[0]?.[1] ?? [];
  if (entries.length > 0) await r.xack(STREAM, 'estimators', ...entries.map((e) => e[0]));
}
await r.quit();
process.exit(0);
