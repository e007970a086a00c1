export * from './experiment';
export * from './io';
export * from './sweep';
export * from './queue/jobs';
export * from './queue/status';
export * from './queue/sweep-queue';
export * from './queue/worker';
export { untilReachable } from './queue/redis';
export { progressTracker, type RunnerCommand, type RunnerMessage } from './queue/job-runner';
