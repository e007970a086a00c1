export * from './bigram-model';
export * from './byte-tokenizer';
export * from './entries';
export * from './generation';
export * from './gpt';
