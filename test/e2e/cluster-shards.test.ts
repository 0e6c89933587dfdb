/**
 * The end-to-end suite against a local three-master Redis Cluster with the queues split over three
 * shards (QUEUE_SHARDS=3, issue 13 item 4): every behaviour of the suite on sharded queues.
 */
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

defineE2eSuite(
  'redis cluster, 3 queue shards',
  () => {
    if (cluster === undefined) throw new Error('cluster not started');
    return { kind: 'cluster', nodes: cluster.nodes };
  },
  { queueShards: 3 },
);
