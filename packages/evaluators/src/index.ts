import type { AnyComponentEntry } from '@skd/core';
import { exactMatchEntry } from './exact-match';

export * from './exact-match';

export const evaluatorEntries: readonly AnyComponentEntry<'evaluator'>[] = [exactMatchEntry];
