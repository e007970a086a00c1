export * from './build-run';
export * from './config-file';
export * from './keys';
export * from './modules';
export * from './registry';
export * from './schema';
