export * from './config';
export * from './gpt-model';
export * from './layers';
