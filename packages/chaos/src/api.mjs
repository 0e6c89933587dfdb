// The chaos package's programmatic API (types in api.d.ts): run a campaign, check a history.
export { replayCommand, runCampaign } from './campaign.mjs';
export { checkHistory, collectHistory, INVARIANTS, readEffectLogs } from './checker.mjs';
export { chaosWorkflow, FAULT_KINDS, faultSchedule, prng } from './workload.mjs';
export { BREAKS } from './effect-tools.mjs';
