import type { AnyComponentEntry } from '@skd/core';
import { inlineDatasetEntry } from './inline';

export * from './inline';

export const datasetEntries: readonly AnyComponentEntry<'dataset'>[] = [inlineDatasetEntry];
