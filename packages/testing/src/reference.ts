import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root (this file lives in packages/testing/src). */
export const REPO_ROOT = path.resolve(__dirname, '../../..');

const SCRIPT = path.join(REPO_ROOT, 'tools/reference/hf_reference.py');

/**
 * The reference Python (transformers, PyTorch 2) that `bash tools/setup.sh` installs into .venv.
 * Tests that compare with it fail, not skip, when it is missing: CI must run them.
 */
export function referencePython(): string {
  const python = path.join(REPO_ROOT, '.venv/bin/python');
  if (!fs.existsSync(python)) throw new Error(`the reference Python environment is missing (${python}): run bash tools/setup.sh`);
  return python;
}

/**
 * Runs a command of tools/reference/hf_reference.py with JSON on stdin; returns its parsed stdout.
 * The script is deterministic, so answers are kept beside the fixtures and reused (by the script's
 * version, the command and its input).
 */
export function runReference<T = unknown>(args: readonly string[], input?: unknown): T {
  // A folder argument is keyed by its files too (name, size, time), so a rewritten folder is asked again.
  const folders = args
    .filter((a) => fs.existsSync(a) && fs.statSync(a).isDirectory())
    .map((dir) =>
      fs
        .readdirSync(dir)
        .sort()
        .map((f) => [f, fs.statSync(path.join(dir, f)).size, fs.statSync(path.join(dir, f)).mtimeMs]),
    );
  const key = createHash('sha256')
    .update(JSON.stringify([args, input ?? null, folders]))
    .digest('hex')
    .slice(0, 24);
  const memo = path.join(fixtureRoot(), 'answers', `${key}.json`);
  if (fs.existsSync(memo)) return JSON.parse(fs.readFileSync(memo, 'utf8')) as T;
  const answer = runScript<T>(args, input);
  fs.mkdirSync(path.dirname(memo), { recursive: true });
  fs.writeFileSync(`${memo}.${process.pid}.tmp`, JSON.stringify(answer));
  fs.renameSync(`${memo}.${process.pid}.tmp`, memo);
  return answer;
}

function runScript<T>(args: readonly string[], input?: unknown): T {
  const run = spawnSync(referencePython(), [SCRIPT, ...args], {
    input: input === undefined ? '' : JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false', HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
  });
  if (run.status !== 0) throw new Error(`hf_reference.py ${args.join(' ')} failed (${run.status}):\n${run.stderr.slice(-3000)}`);
  return JSON.parse(run.stdout) as T;
}

/** Tokenizer styles of the reference script, and the model families. */
export type ReferenceTokenizerStyle = 'gpt2' | 'qwen2' | 'llama3' | 'llama2' | 'mistral' | 'tekken' | 'gemma';
export type ReferenceFamily = 'gpt2' | 'llama' | 'qwen2' | 'qwen3' | 'mistral' | 'phi3' | 'olmo2' | 'gemma' | 'gemma2' | 'gemma3';

/** The tokenizer style each family's fixture uses. */
export const FAMILY_TOKENIZER: Readonly<Record<ReferenceFamily, ReferenceTokenizerStyle>> = {
  gpt2: 'gpt2',
  llama: 'llama3',
  qwen2: 'qwen2',
  qwen3: 'qwen2',
  mistral: 'tekken',
  phi3: 'llama2',
  olmo2: 'llama3',
  gemma: 'gemma',
  gemma2: 'gemma',
  gemma3: 'gemma',
};

/** Fixtures go in one folder per version of the script, shared by every test file and run. */
function fixtureRoot(): string {
  const digest = createHash('sha256').update(fs.readFileSync(SCRIPT)).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `skd-hf-fixtures-${digest}`);
}

function cached(name: string, make: (dir: string) => void): string {
  // Folders are made by the script itself: never answered from the memo of an earlier run.
  const dir = path.join(fixtureRoot(), name);
  if (fs.existsSync(path.join(dir, '.done'))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  make(tmp);
  fs.writeFileSync(path.join(tmp, '.done'), '');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return dir;
}

/** A tokenizer folder (tokenizer.json, tokenizer_config.json with a chat template, generation_config.json) in a family's style. */
export function referenceTokenizer(style: ReferenceTokenizerStyle): string {
  return cached(`tokenizer-${style}`, (dir) => runScript(['tokenizer', style, dir]));
}

export interface ReferenceModelOptions {
  readonly dtype?: 'float32' | 'bfloat16' | 'float16';
  /** Shard the weights into files of at most this many bytes. */
  readonly shardBytes?: number;
  readonly seed?: number;
  /** config.json fields over the family's tiny test shape (a rope scaling, a window, ...). */
  readonly shape?: Readonly<Record<string, unknown>>;
}

/** A random-initialised model folder of a family at a tiny shape, written by transformers' save_pretrained. */
export function referenceModel(family: ReferenceFamily, options: ReferenceModelOptions = {}): string {
  const { dtype = 'float32', shardBytes = 0, seed = 0, shape } = options;
  const tokenizer = referenceTokenizer(FAMILY_TOKENIZER[family]);
  const shaped = shape ? `-${createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 12)}` : '';
  return cached(`model-${family}-${dtype}-${shardBytes}-${seed}${shaped}`, (dir) =>
    runScript([
      'model',
      family,
      dir,
      '--tokenizer',
      tokenizer,
      '--dtype',
      dtype,
      '--shard-bytes',
      String(shardBytes),
      '--seed',
      String(seed),
      ...(shape ? ['--shape', JSON.stringify(shape)] : []),
    ]),
  );
}
