export * from './keys.js';
export * from './scripts.js';
