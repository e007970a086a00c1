export * from './bigram-model';
export * from './bpe-tokenizer';
export * from './io';
export * from './byte-tokenizer';
export * from './decoder';
export * from './entries';
export * from './generation';
export * from './gpt';
