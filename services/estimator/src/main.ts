// Composition root: wired up by the estimator service implementation.
export {};
