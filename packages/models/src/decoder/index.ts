export * from './config';
export * from './decoder-model';
export * from './lora';
