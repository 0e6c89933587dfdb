export const TELEMETRY = 'todo';
