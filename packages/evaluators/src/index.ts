import type { AnyComponentEntry } from '@skd/core';
import { bleuEntry, instructionEntry, rougeEntry } from './corpus-evaluators';
import { exactMatchEntry } from './exact-match';

export * from './checks';
export * from './corpus-evaluators';
export * from './exact-match';
export * from './model-evaluation';
export * from './statistics';
export * from './text-metrics';

export const evaluatorEntries: readonly AnyComponentEntry<'evaluator'>[] = [exactMatchEntry, bleuEntry, rougeEntry, instructionEntry];
export * from './breakdown';
