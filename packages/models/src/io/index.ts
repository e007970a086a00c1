export * from './atomic';
export * from './checkpoint';
export * from './hf-config';
export * from './hf-gpt2';
export * from './hf-model';
export * from './hf-weights';
export * from './safetensors';
export * from './tokenizer-files';
