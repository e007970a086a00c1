export * from './config';
export * from './decoder-model';
