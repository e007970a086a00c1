export * from './select';
export * from './webgpu';
