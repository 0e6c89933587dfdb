/** The end-to-end suite against a local three-master Redis Cluster (hash-tagged keys, BullMQ prefix). */
import { type RedisClusterHandle, startRedisCluster } from '@gambit/testkit';
import { afterAll, beforeAll } from 'vitest';
import { defineE2eSuite } from './suite.js';

let cluster: RedisClusterHandle | undefined;
beforeAll(async () => {
  cluster = await startRedisCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

defineE2eSuite('redis cluster', () => {
  if (cluster === undefined) throw new Error('cluster not started');
  return { kind: 'cluster', nodes: cluster.nodes };
});
