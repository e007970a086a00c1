export * from './data-stream';
export * from './evaluation';
export * from './format';
export * from './history';
export * from './optimizer';
export * from './stages';
export * from './trainer';
export * from './run-lock';
