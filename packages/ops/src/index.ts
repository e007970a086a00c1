export * from './adamw';
export * from './attention';
export * from './gelu';
export * from './kernels';
export * from './kv-cache';
export * from './layer-norm';
export * from './log-softmax';
export * from './sampling';
