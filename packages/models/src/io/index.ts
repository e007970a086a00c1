export * from './atomic';
export * from './checkpoint';
export * from './hf-gpt2';
export * from './safetensors';
export * from './tokenizer-files';
