export * from './divergences';
export * from './entries';
export * from './log-space';
export * from './minillm';
export * from './sparse';
export * from './taid';
export * from './token-divergence';
export * from './token-loss';
