import type { DatasetSource } from './dataset';
import type { Divergence } from './divergence';
import type { Evaluator } from './evaluator';
import { injectionToken } from './injection';
import type { LanguageModel } from './language-model';
import type { Rng } from './rng';
import type { KdSampler } from './sampler';
import type { Tokenizer } from './tokenizer';

/** The tokens a run's container holds. Components never see these: they get plain objects. */
export const RUN_RNG = injectionToken<Rng>('RunRng');
export const TOKENIZER = injectionToken<Tokenizer>('Tokenizer');
/** The teacher's own tokenizer; registered only when it differs from TOKENIZER's. */
export const TEACHER_TOKENIZER = injectionToken<Tokenizer | undefined>('TeacherTokenizer');
export const TEACHER = injectionToken<LanguageModel | undefined>('Teacher');
export const STUDENT = injectionToken<LanguageModel>('Student');
export const SAMPLER = injectionToken<KdSampler>('Sampler');
export const DIVERGENCE = injectionToken<Divergence>('Divergence');
export const DATASET = injectionToken<DatasetSource>('Dataset');
export const EVALUATORS = injectionToken<readonly Evaluator[]>('Evaluators');
