export * from './build-run';
export * from './config-file';
export * from './modules';
export * from './registry';
export * from './schema';
