/** One training or evaluation example, as text. */
export interface Example {
  /** Stable id (file and line, or generator index), used in error messages and caches. */
  readonly id: string;
  readonly prompt: string;
  readonly response: string;
  /**
   * The response as trained on, when it differs from `response` (the reference evaluators score):
   * a chat template's rendering of the assistant turn, ending with its end-of-turn token.
   */
  readonly target?: string;
  /** Extra fields a task's evaluator needs (final answer, instruction checker spec, ...). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

export type SplitName = 'train' | 'eval' | 'test';

/** A pull-based stream of examples: iterate it with `for await`. Iterating again restarts it. */
export interface Dataset extends AsyncIterable<Example> {
  readonly name: string;
  /** Number of examples when known without reading everything. */
  readonly size?: number;
  /**
   * Strings that end a response of this task (a translation's newline, a chat transcript's next
   * "\nuser"): generated text is cut before the first one, before it is trained on or scored, and a
   * row's generation ends at the first token that holds one (`generationStops`).
   */
  readonly stopStrings?: readonly string[];
}

/** A task's splits. */
export interface DatasetSource {
  readonly name: string;
  split(split: SplitName): Dataset;
}
