// Tenant A's flood for bench/fairness/run.mjs, in its own thread: A's 300 concurrent HTTP
// submits are handled on this thread's event loop, so they do not delay B's trickle (a separate
// client in reality), which runs on the main thread. Posts { ids, doneAtMs } or { error }.
import { parentPort, workerData } from 'node:worker_threads';
import { SchedulerClient } from '../../packages/cli/dist/demo/client.js';

const { baseUrl, key, tenant, runs } = workerData;
const client = new SchedulerClient(baseUrl, key);
try {
  const ids = await Promise.all(Array.from({ length: runs }, (_, i) => client.submit({ tenant, workflow: `${tenant}-wf`, inputs: { q: `a${i}` }, speculation: false }).then((r) => r.runId)));
  parentPort.postMessage({ ids, doneAtMs: Date.now() });
} catch (err) {
  parentPort.postMessage({ error: String(err?.stack ?? err) });
}
