import type { AnyComponentEntry } from '@skd/core';
import { inlineDatasetEntry } from './inline';
import { jsonlDatasetEntry } from './jsonl';

export * from './batching';
export * from './inline';
export * from './jsonl';

export const datasetEntries: readonly AnyComponentEntry<'dataset'>[] = [inlineDatasetEntry, jsonlDatasetEntry];
