import type { Io } from '@skd/experiment';

/** Exit codes: 0 done, 1 unexpected failure, 2 bad input (config, files), 130 interrupted (checkpoint written). */
export const EXIT_INTERRUPTED = 130;

/** What a command tells `main` beyond its output. */
export interface CommandState {
  code: number;
  /**
   * Called by commands that check the abort signal (train, distill, eval, sweep), so that a first
   * Ctrl-C aborts it instead of ending the process. Other commands keep the default: Ctrl-C ends them
   * at once, even inside synchronous work that never yields to the event loop.
   */
  catchInterrupts: () => void;
}

/** What every command is given: where it writes, the abort signal of a first Ctrl-C, and its exit state. */
export interface CommandContext {
  readonly io: Io;
  readonly signal: AbortSignal | undefined;
  readonly exit: CommandState;
}
