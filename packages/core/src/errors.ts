/**
 * Errors say what went wrong, with the offending value, and how to fix it. Every error of the
 * framework is an `SkdError`, so callers can tell ours from a crash deep inside a dependency.
 */
export interface SkdErrorOptions {
  readonly cause?: unknown;
  /** How to fix it, appended to the message as "Fix: ...". */
  readonly hint?: string;
}

export class SkdError extends Error {
  override readonly name: string = 'SkdError';
  readonly hint: string | undefined;

  constructor(message: string, options: SkdErrorOptions = {}) {
    super(options.hint ? `${message}. Fix: ${options.hint}` : message, { cause: options.cause });
    this.hint = options.hint;
  }
}

/** One problem in a config: where (a dotted path), what, and the value that was there. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

/** A config that cannot run. Raised before any tensor is made. */
export class ConfigError extends SkdError {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options: SkdErrorOptions = {}) {
    const lines = issues.map((issue) => `  - ${issue.path || '(root)'}: ${issue.message}`);
    super(`invalid config ${source}:\n${lines.join('\n')}`, options);
    this.issues = issues;
  }
}

/** A tensor or array with the wrong shape: names the tensor, the expected and the actual shape. */
export class ShapeError extends SkdError {
  override readonly name = 'ShapeError';

  constructor(what: string, expected: string, actual: readonly number[] | string, options: SkdErrorOptions = {}) {
    const got = typeof actual === 'string' ? actual : `[${actual.join(', ')}]`;
    super(`${what} must have shape ${expected}, got ${got}`, options);
  }
}

/** Teacher and student disagree on the vocabulary: token-level KD would silently train garbage. */
export class VocabularyMismatchError extends SkdError {
  override readonly name = 'VocabularyMismatchError';

  constructor(detail: string, options: SkdErrorOptions = {}) {
    super(`teacher and student must share a vocabulary for token-level KD: ${detail}`, {
      hint: 'use the same tokenizer (and vocabulary size) for teacher and student',
      ...options,
    });
  }
}

/** A model produced NaN or infinite values: training has diverged (or the input was corrupt). */
export class NonFiniteError extends SkdError {
  override readonly name = 'NonFiniteError';
}

/** A requested tensor backend could not be initialised. */
export class BackendError extends SkdError {
  override readonly name = 'BackendError';
}

/** A file that cannot be read as what it claims to be (checkpoint, dataset, config). */
export class FormatError extends SkdError {
  override readonly name = 'FormatError';

  constructor(file: string, detail: string, options: SkdErrorOptions = {}) {
    super(`${file}: ${detail}`, options);
  }
}

/** Formats a value for an error message: short, unambiguous, never "[object Object]". */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Work stopped because the user asked (Ctrl-C): not a failure; callers keep what is done and exit 130. */
export class InterruptedError extends SkdError {
  override readonly name = 'InterruptedError';

  constructor(what: string, options: SkdErrorOptions = {}) {
    super(`interrupted: ${what}`, options);
  }
}

/**
 * Lets timers, I/O and signal handlers run. Tensor work resolves its promises as microtasks, so a loop
 * of awaits never gives Node's event loop a turn: a Ctrl-C would be heard only when the loop ends.
 * Long loops call this once per step or batch (it costs microseconds).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Yields to the event loop, then throws InterruptedError if `signal` was aborted meanwhile. */
export async function throwIfInterrupted(signal: AbortSignal | undefined, what: string): Promise<void> {
  await yieldToEventLoop();
  if (signal?.aborted) throw new InterruptedError(what);
}

/** Words for the system errors a write meets; anything else keeps Node's own message. */
const SYSTEM_CAUSES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  EIO: 'input/output error',
};

/** The cause of a failed file operation in a few words, e.g. "no space left on device (ENOSPC)". */
export function describeSystemError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && SYSTEM_CAUSES[code]) return `${SYSTEM_CAUSES[code]} (${code})`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * A file could not be written (disk full, permissions, a short write). Whatever was being replaced
 * is intact and no temporary file is left; the CLI prints this one line and exits 1.
 */
export class WriteError extends SkdError {
  override readonly name = 'WriteError';
  readonly path: string;

  constructor(file: string, cause: unknown, options: SkdErrorOptions = {}) {
    super(`cannot write ${file}: ${describeSystemError(cause)}`, { cause, ...options });
    this.path = file;
  }
}
