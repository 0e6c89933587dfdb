// Composition root: wired up by the scheduler service implementation.
export {};
