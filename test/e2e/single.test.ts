/** The end-to-end suite against one redis-server (the global test server). */
import { inject } from 'vitest';
import { defineE2eSuite } from './suite.js';

defineE2eSuite('single redis', () => ({ kind: 'single', url: inject('redisUrl') }));
