export * from './gradients';
export * from './select';
