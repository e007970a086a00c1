import type { AnyComponentEntry } from '@skd/core';
import { supervisedSamplerEntry } from './supervised';

export * from './assemble';
export * from './supervised';

export const samplerEntries: readonly AnyComponentEntry<'sampler'>[] = [supervisedSamplerEntry];
