export * from './bpe-model';
export * from './hf-tokenizer';
export * from './pipeline';
export * from './chat-template';
export * from './compare';
export * from './bridge';
