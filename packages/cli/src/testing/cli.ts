/** Helpers for the end-to-end tests of the built CLI (not part of the package). */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// The built `skd` binary, as a user runs it (build first: nx runs build before test).
export const BIN = path.resolve(__dirname, '../../dist/main.js');
export const DATA = path.resolve(__dirname, '../../../../data/arithmetic');

export function tinyConfig(dir: string, over: { steps?: number; checkpointEvery?: number; learningRate?: number; evalEvery?: number } = {}): string {
  const config = {
    $comment: 'a tiny SKD run for the CLI tests',
    seed: 3,
    backend: 'auto',
    teacher: { kind: 'gpt', options: { layers: 2, dModel: 32, heads: 2, contextLength: 512 } },
    student: { kind: 'gpt', options: { layers: 1, dModel: 16, heads: 2, contextLength: 512 } },
    sampler: { kind: 'skd', options: { topK: 40, maxNewTokens: 6 } },
    divergence: { kind: 'forward-kl' },
    dataset: {
      kind: 'jsonl',
      options: { name: 'arithmetic', files: { train: `${DATA}/train.jsonl.gz`, eval: `${DATA}/eval.jsonl`, test: `${DATA}/test.jsonl` }, limit: 100 },
    },
    evaluators: [{ kind: 'exact-match', options: { answerMarker: '####' } }],
    training: {
      steps: over.steps ?? 4,
      batchSize: 4,
      evalEvery: over.evalEvery ?? 2,
      evalLimit: 4,
      testLimit: 4,
      maxNewTokens: 6,
      checkpointEvery: over.checkpointEvery ?? 2,
      ...(over.learningRate ? { learningRate: over.learningRate } : {}),
    },
  };
  const file = path.join(dir, 'run.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

// Generous: CI runs other projects' tests and the packaging check beside these on two cores.
export function skd(args: string[], cwd: string, timeoutMs = 300_000): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: timeoutMs });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function start(args: string[], cwd: string): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  return Object.assign(child, { output: () => output });
}

export async function waitFor(condition: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
export const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skd-cli-'));

/** What the tests read of a step event. */
export interface StepEvent {
  readonly step: number;
  readonly loss: number;
  readonly gradNorm: number;
  readonly sampler: { readonly acceptanceRate: number; readonly teacherPassesPerToken?: number; readonly tokensGenerated?: number };
}

/** The step events a run wrote to its metrics.jsonl, in order. */
export function stepEvents(runDir: string): StepEvent[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as StepEvent & { type: string })
    .filter((e) => e.type === 'step');
}
