// Composition root: wired up by the worker service implementation.
export {};
