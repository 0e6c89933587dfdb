export * from './redis-server.js';
export * from './process.js';
export * from './prefix.js';
export * from './gguf.js';
export * from './netns.js';
