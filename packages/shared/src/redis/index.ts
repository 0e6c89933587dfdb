export * from './keys.js';
export * from './scripts.js';
export * from './attempt-scripts.js';
export * from './run-scripts.js';
export * from './advance.js';
export * from './attention-scripts.js';
export * from './op-class-store.js';
export * from './admission-scripts.js';
