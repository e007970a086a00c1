import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { HfTokenizer, loadCheckpoint, loadHuggingFaceModel, readSafetensors, type DecoderModel } from '@skd/models';
import { maxAbsDiff, referenceModel, runReference, useBackend } from '@skd/testing';
import { exited, skd, start, stepEvents, tmp, waitFor } from './testing/cli';

// Distilling between two Hugging Face folders written by transformers (Qwen2 architecture, random
// weights, a padded embedding, a chat template), as a user runs it with the built CLI: a chat
// dataset, SKD for 5 steps, a killed run resumed to the same bytes, and an export transformers reads.
const QUESTIONS = ['What is 2 + 3?', 'Name a colour.', 'Say hello in French.', 'What is 10 - 4?', 'Spell "cat" backwards.', 'Count to three.'];
const ANSWERS = ['5', 'Blue.', 'Bonjour!', '6', 'tac', '1, 2, 3'];

/**
 * `run.json` in `dir` distilled as it is (runs/half) and with one `--set` (runs/full), cleanly: the same
 * losses within 1e-4 at each of its 3 steps.
 */
function distilsToTheSameLosses(dir: string, set: string): void {
  for (const [run, extra] of [
    ['half', []],
    ['full', ['--set', set]],
  ] as const) {
    const result = skd(['distill', 'run.json', '--out', `runs/${run}`, ...extra], dir);
    expect(result.stderr).not.toMatch(/error|warning/i);
    expect(result.status).toBe(0);
  }
  const [half, full] = ['half', 'full'].map((run) => stepEvents(path.join(dir, `runs/${run}`)).map((e) => e.loss));
  expect(half).toHaveLength(3);
  half?.forEach((loss, i) => expect(Math.abs(loss - (full?.[i] as number))).toBeLessThan(1e-4));
}

function chatData(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [split, n] of [
    ['train', 24],
    ['eval', 4],
    ['test', 4],
  ] as const) {
    const lines = Array.from({ length: n }, (_, i) => {
      const q = QUESTIONS[i % QUESTIONS.length] as string;
      const a = ANSWERS[i % ANSWERS.length] as string;
      return JSON.stringify(
        i % 2 === 0
          ? {
              messages: [
                { role: 'system', content: 'Be brief.' },
                { role: 'user', content: q },
                { role: 'assistant', content: a },
              ],
            }
          : {
              messages: [
                { role: 'user', content: q },
                { role: 'assistant', content: a },
              ],
            },
      );
    });
    files[split] = path.join(dir, `${split}.jsonl`);
    fs.writeFileSync(files[split] as string, `${lines.join('\n')}\n`);
  }
  return files;
}

describe('distilling a Hugging Face student from a Hugging Face teacher (end to end)', () => {
  const teacher = referenceModel('qwen2', { seed: 1 });
  const student = referenceModel('qwen2', { seed: 2 });
  const dir = tmp();
  const config = {
    $comment: 'SKD between two Qwen2 folders on a chat dataset',
    seed: 5,
    tokenizer: { kind: 'hf', options: { path: student } },
    teacher: { kind: 'hf', options: { path: teacher } },
    student: { kind: 'hf', options: { path: student } },
    sampler: { kind: 'skd', options: { topK: 5, maxNewTokens: 24 } },
    divergence: { kind: 'forward-kl' },
    dataset: { kind: 'jsonl', options: { files: chatData(dir) } },
    training: { steps: 5, batchSize: 4, learningRate: 1e-3, checkpointEvery: 1, evalEvery: 0, testLimit: 4, maxNewTokens: 8 },
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config, null, 2));

  it("checks the config: both models' tokenizers are the run's, and the padded embedding is said", () => {
    const checked = skd(['check', 'run.json'], dir);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    expect(checked.stdout).toMatch(/student +hf \(context 128, vocabulary 700\)/);
    expect(checked.stdout).toContain('the embedding has 705 rows for 700 tokens; logits, sampling and the divergence use ids 0..699 only');
  });

  it('runs SKD for 5 steps; a run killed after its first checkpoint resumes to the same bytes', async () => {
    const straight = skd(['distill', 'run.json', '--out', 'runs/straight'], dir);
    expect(straight.stderr).not.toMatch(/error|warning/i);
    expect(straight.status).toBe(0);
    const steps = stepEvents(path.join(dir, 'runs/straight'));
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5]);
    expect(steps.every((e) => Number.isFinite(e.loss) && e.sampler.acceptanceRate >= 0)).toBe(true);
    const child = start(['distill', 'run.json', '--out', 'runs/killed'], dir);
    await waitFor(() => fs.existsSync(path.join(dir, 'runs/killed/checkpoints/step-000001')));
    child.kill('SIGKILL');
    await exited(child);
    expect(fs.existsSync(path.join(dir, 'runs/killed/summary.json'))).toBe(false);
    const resumed = skd(['distill', 'run.json', '--out', 'runs/killed', '--resume'], dir);
    expect(resumed.status).toBe(0);
    const weights = (run: string) => fs.readFileSync(path.join(dir, 'runs', run, 'model', 'model.safetensors'));
    expect(weights('killed').equals(weights('straight'))).toBe(true);
  });

  it("puts Hugging Face folders in the report as baselines, scored with the runs' tokenizer; one that reads ids otherwise is refused", () => {
    const report = skd(['report', 'runs', '--baseline', student, '--baseline', teacher, '--out', 'report', '--json'], dir);
    expect(report.stderr).not.toMatch(/error|warning/i);
    expect(report.status).toBe(0);
    const groups = JSON.parse(report.stdout).sections[0].groups as { group: string; evaluation?: boolean; metrics: Record<string, { mean: number }> }[];
    const baselines = groups.filter((g) => g.group.startsWith('baseline-'));
    expect(baselines).toHaveLength(2);
    expect(baselines.every((g) => g.evaluation === true && Number.isFinite(g.metrics['perplexity']?.mean))).toBe(true);
    const other = referenceModel('llama', { seed: 1 }); // Llama 3's tokenizer, not the runs' Qwen2 one
    const refused = skd(['report', 'runs', '--baseline', other, '--out', 'report-other'], dir);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain("has its own tokenizer, which differs from the run's");
  });

  it("exports the student as a Qwen2 folder: transformers gives its logits (within 1e-4), and its tokenizer files are the original's", async () => {
    const exported = skd(['export', 'runs/straight', '--out', 'hf-student', '--json'], dir);
    expect(exported.stderr).not.toMatch(/error/i);
    expect(exported.status).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ architecture: 'qwen2', reloadedLogitsMaxDiff: 0 });
    const out = path.join(dir, 'hf-student');
    for (const file of ['tokenizer.json', 'tokenizer_config.json'])
      expect(JSON.parse(fs.readFileSync(path.join(out, file), 'utf8'))).toEqual(JSON.parse(fs.readFileSync(path.join(student, file), 'utf8')));
    await useBackend('wasm');
    const trained = loadCheckpoint(path.join(dir, 'runs/straight/model'));
    const tokenizer = HfTokenizer.fromFolder(out);
    const ids = [tokenizer.encode('<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n')];
    const ours = tf.tidy(() => trained.model.logits(tf.tensor2d(ids, undefined, 'int32')).arraySync()[0] as number[][]);
    const theirs = runReference<{ logits: number[][][] }>(['logits', out], { ids, mask: ids.map((r) => r.map(() => 1)) }).logits[0] as number[][];
    expect(maxAbsDiff(ours.flat(), theirs.map((row) => row.slice(0, 700)).flat())).toBeLessThan(1e-4);
    // Training moved the weights: the export is the trained student, not the starting one.
    const start = runReference<{ logits: number[][][] }>(['logits', student], { ids, mask: ids.map((r) => r.map(() => 1)) }).logits[0] as number[][];
    expect(maxAbsDiff(start.flat(), theirs.flat())).toBeGreaterThan(1e-3);
    trained.model.dispose();
  });
});

describe('every sampler and divergence on Hugging Face folders (end to end)', () => {
  const teacher = referenceModel('qwen2', { seed: 1 });
  const student = referenceModel('qwen2', { seed: 2 });
  const dir = tmp();
  const base = {
    seed: 7,
    tokenizer: { kind: 'hf', options: { path: student } },
    teacher: { kind: 'hf', options: { path: teacher } },
    student: { kind: 'hf', options: { path: student } },
    dataset: { kind: 'jsonl', options: { files: chatData(dir), template: 'chat' } },
    training: { steps: 2, batchSize: 2, evalEvery: 0, testLimit: 2, maxNewTokens: 4, checkpointEvery: 0 },
  };
  // Each method as the paper table runs it: a sampler and its divergence, unchanged for these models.
  it.each([
    ['supervised', 'cross-entropy'],
    ['supervised', 'forward-kl'],
    ['seq-kd', 'forward-kl'],
    ['on-policy', 'reverse-kl'],
    ['mixed', 'jsd'],
    ['imit-kd', 'tvd'],
    ['distillm', 'skew-kl'],
    ['mixed-skd', 'skew-reverse-kl'],
  ])('%s with %s trains 2 steps to finite losses', (sampler, divergence) => {
    const file = path.join(dir, `${sampler}-${divergence}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        ...base,
        sampler: { kind: sampler, options: sampler === 'supervised' || sampler === 'seq-kd' ? {} : { maxNewTokens: 6 } },
        divergence: { kind: divergence },
      }),
    );
    const result = skd(['distill', file, '--out', `runs/${sampler}-${divergence}`], dir);
    expect(result.stderr).not.toMatch(/error|warning/i);
    expect(result.status).toBe(0);
    const steps = stepEvents(path.join(dir, `runs/${sampler}-${divergence}`));
    expect(steps.map((e) => e.step)).toEqual([1, 2]);
    expect(steps.every((e) => Number.isFinite(e.loss))).toBe(true);
  });
});

describe('every Llama-family architecture distils and exports (end to end)', () => {
  const dir = tmp();
  const pairs = Object.fromEntries(
    ['train', 'eval', 'test'].map((split) => {
      const file = path.join(dir, `${split}-pairs.jsonl`);
      fs.writeFileSync(file, `${QUESTIONS.map((q, i) => JSON.stringify({ prompt: q, response: ANSWERS[i] })).join('\n')}\n`);
      return [split, file];
    }),
  );
  // SKD between two folders of each family written by transformers (the parity fixtures' shapes: Qwen3's
  // per-head norms and separate head width, Mistral's and Phi-3's windows, Phi-3's fused matrices,
  // OLMo 2's moved norms, Gemma 3's two ropes), then skd export, read back to identical logits.
  it.each(['qwen3', 'mistral', 'phi3', 'olmo2', 'gemma3'] as const)('%s: 2 SKD steps to finite losses, exported and read back', (family) => {
    const teacher = referenceModel(family, { seed: 1 });
    const student = referenceModel(family, { seed: 2 });
    const file = path.join(dir, `${family}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        seed: 3,
        tokenizer: { kind: 'hf', options: { path: student } },
        teacher: { kind: 'hf', options: { path: teacher } },
        student: { kind: 'hf', options: { path: student } },
        sampler: { kind: 'skd', options: { topK: 5, maxNewTokens: 8 } },
        divergence: { kind: 'forward-kl' },
        // Prompt and response pairs through each family's chat template (Gemma's refuses a system turn).
        dataset: { kind: 'jsonl', options: { files: pairs, template: 'chat' } },
        training: { steps: 2, batchSize: 2, evalEvery: 0, testLimit: 2, maxNewTokens: 4, checkpointEvery: 0, learningRate: 1e-3 },
      }),
    );
    const result = skd(['distill', file, '--out', `runs/${family}`], dir);
    expect(result.stderr).not.toMatch(/error|warning/i);
    expect(result.status).toBe(0);
    const steps = stepEvents(path.join(dir, `runs/${family}`));
    expect(steps.map((e) => e.step)).toEqual([1, 2]);
    expect(steps.every((e) => Number.isFinite(e.loss) && e.sampler.acceptanceRate >= 0)).toBe(true);
    const exported = skd(['export', `runs/${family}`, '--out', `hf-${family}`, '--json'], dir);
    expect(exported.status).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ architecture: family, reloadedLogitsMaxDiff: 0 });
  });
});

describe('a teacher stored in bfloat16 is held in 16 bits (end to end)', () => {
  const dir = tmp();
  const teacher = referenceModel('llama', { seed: 1, dtype: 'bfloat16' });
  const student = referenceModel('llama', { seed: 2 });
  fs.writeFileSync(
    path.join(dir, 'run.json'),
    JSON.stringify({
      seed: 4,
      tokenizer: { kind: 'hf', options: { path: student } },
      teacher: { kind: 'hf', options: { path: teacher } },
      student: { kind: 'hf', options: { path: student } },
      sampler: { kind: 'skd', options: { topK: 5, maxNewTokens: 12 } },
      divergence: { kind: 'forward-kl' },
      dataset: { kind: 'jsonl', options: { files: chatData(dir) } },
      training: { steps: 3, batchSize: 2, evalEvery: 0, testLimit: 2, maxNewTokens: 4, checkpointEvery: 0, learningRate: 1e-3 },
    }),
  );

  it('check says how the teacher holds its weights; a 16-bit student is refused in one line', () => {
    const checked = skd(['check', 'run.json'], dir);
    expect(checked.status).toBe(0);
    expect(checked.stdout).toMatch(/teacher +hf \(context \d+, vocabulary \d+; weight matrices in bfloat16\)/);
    expect(skd(['check', 'run.json', '--set', 'teacher.options.dtype=float32'], dir).stdout).toMatch(/teacher +hf \(context \d+, vocabulary \d+\)\n/);
    const refused = skd(['check', 'run.json', '--set', 'student.options.dtype=bfloat16'], dir);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('a student that trains every weight trains them in float32; bfloat16 weights are for frozen ones');
  });

  it('distils SKD to the losses of the same teacher held in float32 (within 1e-4 at every step)', () => {
    distilsToTheSameLosses(dir, 'teacher.options.dtype=float32');
  });
});

describe('broken Hugging Face folders (end to end): one line naming the file and the field, exit 2, no run folder', () => {
  const healthy = referenceModel('qwen2', { seed: 1 });
  const sharded = referenceModel('llama', { dtype: 'bfloat16', shardBytes: 60_000, seed: 4 });

  /** A copy of `source` broken by `damage`, and a run config that uses it as teacher, student and tokenizer. */
  function broken(source: string, damage: (dir: string) => void): string {
    const dir = tmp();
    fs.cpSync(source, path.join(dir, 'model'), { recursive: true });
    damage(path.join(dir, 'model'));
    fs.writeFileSync(path.join(dir, 'train.jsonl'), `${JSON.stringify({ prompt: 'a', response: 'b' })}\n`);
    const model = { kind: 'hf', options: { path: 'model' } };
    fs.writeFileSync(
      path.join(dir, 'run.json'),
      JSON.stringify({
        tokenizer: model,
        teacher: model,
        student: model,
        sampler: { kind: 'skd' },
        divergence: { kind: 'forward-kl' },
        dataset: { kind: 'jsonl', options: { files: { train: 'train.jsonl' } } },
        training: { steps: 1 },
      }),
    );
    return dir;
  }

  /** Rewrites the header of a safetensors file (same length, padded with spaces). */
  function editHeader(file: string, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>) => void): void {
    const bytes = fs.readFileSync(file);
    const length = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
    edit(header);
    const json = Buffer.from(JSON.stringify(header).padEnd(length, ' '), 'utf8');
    if (json.length !== length) throw new Error('the edited header does not fit');
    json.copy(bytes, 8);
    fs.writeFileSync(file, bytes);
  }

  const tensorNames = (file: string) => {
    const bytes = fs.readFileSync(file);
    return Object.keys(JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')))
      .filter((k) => k !== '__metadata__')
      .sort();
  };

  it.each([
    [
      'a missing shard',
      sharded,
      (dir: string) =>
        fs.rmSync(
          path.join(
            dir,
            fs
              .readdirSync(dir)
              .filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f))
              .sort()[1] as string,
          ),
        ),
      /model-00002-of-\d+\.safetensors: missing shard: weight_map names it for \d+ tensors/,
    ],
    [
      'a truncated file',
      healthy,
      (dir: string) => fs.truncateSync(path.join(dir, 'model.safetensors'), fs.statSync(path.join(dir, 'model.safetensors')).size - 100),
      /model\.safetensors: not a valid safetensors file: tensor ".+" spans bytes \d+\.\.\d+, past the \d+-byte data block \(truncated file\?\)/,
    ],
    [
      'overlapping tensors',
      healthy,
      (dir: string) =>
        editHeader(path.join(dir, 'model.safetensors'), (h) => {
          const [a, b] = tensorNames(path.join(dir, 'model.safetensors'))
            .map((n) => h[n] as { data_offsets: [number, number] })
            .sort((x, y) => x.data_offsets[0] - y.data_offsets[0]);
          const size = (b as { data_offsets: [number, number] }).data_offsets[1] - (b as { data_offsets: [number, number] }).data_offsets[0];
          (b as { data_offsets: [number, number] }).data_offsets = [
            (a as { data_offsets: [number, number] }).data_offsets[0],
            (a as { data_offsets: [number, number] }).data_offsets[0] + size,
          ];
        }),
      /model\.safetensors: not a valid safetensors file: tensors ".+" and ".+" overlap/,
    ],
    [
      'an unsupported dtype',
      healthy,
      (dir: string) =>
        editHeader(path.join(dir, 'model.safetensors'), (h) => {
          (h['model.norm.weight'] as { dtype: string }).dtype = 'F8E4';
        }),
      /model\.safetensors: not a valid safetensors file: tensor "model\.norm\.weight" has unsupported dtype "F8E4"/,
    ],
    [
      'an unsupported rope scaling',
      healthy,
      (dir: string) => {
        const file = path.join(dir, 'config.json');
        fs.writeFileSync(
          file,
          JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), rope_parameters: { rope_type: 'proportional', rope_theta: 10000, factor: 4 } }),
        );
      },
      /config\.json: rope_parameters\.rope_type: "proportional" is not supported \(supported: default, linear, llama3, yarn, longrope, dynamic\)/,
    ],
    ['a missing tokenizer file', healthy, (dir: string) => fs.rmSync(path.join(dir, 'tokenizer.json')), /model: tokenizer\.json is missing/],
  ])('%s', (_what, source, damage, message) => {
    const dir = broken(source, damage);
    const result = skd(['distill', 'run.json', '--out', 'runs/x'], dir);
    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: \//);
    expect(lines[0]).toMatch(message);
    expect(fs.existsSync(path.join(dir, 'runs'))).toBe(false);
  });
});

describe('a LoRA student from a Hugging Face folder (end to end): only the adapters train, and both exports read back in transformers and PEFT', () => {
  const teacher = referenceModel('qwen2', { seed: 1 });
  const student = referenceModel('qwen2', { seed: 2 });
  const dir = tmp();
  const lora = { rank: 4, alpha: 8, dropout: 0.05, targets: ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] };
  const config = {
    seed: 9,
    tokenizer: { kind: 'hf', options: { path: student } },
    teacher: { kind: 'hf', options: { path: teacher } },
    student: { kind: 'hf', options: { path: student, lora } },
    sampler: { kind: 'on-policy', options: { maxNewTokens: 16 } },
    divergence: { kind: 'forward-kl' },
    dataset: { kind: 'jsonl', options: { files: chatData(dir) } },
    training: { steps: 4, batchSize: 4, learningRate: 5e-3, checkpointEvery: 1, evalEvery: 0, testLimit: 4, maxNewTokens: 8, checkpointLayers: true },
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config, null, 2));
  const ids = [[3, 17, 250, 9, 41, 600, 12, 5, 88, 301]];
  const mask = ids.map((r) => r.map(() => 1));

  it('check says what trains; adapters on a teacher or a GPT student are refused in one line', () => {
    const checked = skd(['check', 'run.json'], dir);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    expect(checked.stdout).toMatch(/student +hf \(context 128, vocabulary 700; LoRA rank 4 on q, k, v, o, gate, up, down: [\d,]+ of [\d,]+ parameters train\)/);
    const onTeacher = skd(['check', 'run.json', '--set', 'teacher.options.lora={}'], dir);
    expect(onTeacher.status).toBe(2);
    expect(onTeacher.stderr).toContain('LoRA adapters train a student; the teacher is frozen already');
    const gpt = referenceModel('gpt2', { seed: 3 });
    fs.writeFileSync(
      path.join(dir, 'gpt.json'),
      JSON.stringify({
        ...config,
        tokenizer: { kind: 'hf', options: { path: gpt } },
        teacher: { kind: 'hf', options: { path: gpt } },
        student: { kind: 'hf', options: { path: gpt, lora } },
      }),
    );
    const onGpt = skd(['check', 'gpt.json'], dir);
    expect(onGpt.status).toBe(2);
    expect(onGpt.stderr).toContain('LoRA adapters sit on Llama-family decoders');
  });

  it('distils with the base frozen; checkpoints hold the adapters, and a killed run resumes to the same bytes', async () => {
    const straight = skd(['distill', 'run.json', '--out', 'runs/straight'], dir);
    expect(straight.stderr).not.toMatch(/error|warning/i);
    expect(straight.status).toBe(0);
    const child = start(['distill', 'run.json', '--out', 'runs/killed'], dir);
    await waitFor(() => fs.existsSync(path.join(dir, 'runs/killed/checkpoints/step-000002')));
    child.kill('SIGKILL');
    await exited(child);
    expect(skd(['distill', 'run.json', '--out', 'runs/killed', '--resume'], dir).status).toBe(0);
    const file = (run: string, name: string) => fs.readFileSync(path.join(dir, 'runs', run, 'model', name));
    expect(file('killed', 'adapter.safetensors').equals(file('straight', 'adapter.safetensors'))).toBe(true);
    await useBackend('wasm');
    const trained = loadCheckpoint(path.join(dir, 'runs/straight/model'));
    // A training checkpoint holds the adapters and their two moments, not the frozen weights.
    const state = [...readSafetensors(path.join(dir, 'runs/straight/checkpoints/step-000004/state.safetensors')).arrays];
    const floats = (prefix: string) => state.filter(([name]) => name.startsWith(prefix)).reduce((n, [, a]) => n + a.data.length, 0);
    expect(floats('student/')).toBe((trained.model as DecoderModel).trainableParameterCount);
    expect(floats('adam/')).toBe(2 * (trained.model as DecoderModel).trainableParameterCount);
    expect((trained.model as DecoderModel).trainableParameterCount).toBeLessThan(trained.model.parameterCount / 10);
    const base = loadHuggingFaceModel(student, { outputVocab: 700 });
    for (const [name, value] of base.params) expect(maxAbsDiff(trained.model.params.get(name)?.dataSync() ?? [], value.dataSync())).toBe(0);
    const moved = tf.tidy(
      () =>
        tf
          .max(tf.abs(tf.sub(trained.model.logits(tf.tensor2d(ids, undefined, 'int32')), base.logits(tf.tensor2d(ids, undefined, 'int32')))))
          .dataSync()[0] as number,
    );
    expect(moved).toBeGreaterThan(1e-3);
    trained.model.dispose();
    base.dispose();
  });

  it('exports merged weights that transformers reads, and the adapters alone as a folder PEFT loads onto the base (logits within 1e-4)', async () => {
    await useBackend('wasm');
    const trained = loadCheckpoint(path.join(dir, 'runs/straight/model'));
    const ours = tf.tidy(() => (trained.model.logits(tf.tensor2d(ids, undefined, 'int32')).arraySync() as number[][][])[0] as number[][]);
    trained.model.dispose();
    const merged = skd(['export', 'runs/straight', '--out', 'merged', '--json'], dir);
    expect(merged.stderr).not.toMatch(/error/i);
    expect(merged.status).toBe(0);
    expect(JSON.parse(merged.stdout)).toMatchObject({ architecture: 'qwen2', adaptersMerged: true });
    const fromMerged = runReference<{ logits: number[][][] }>(['logits', path.join(dir, 'merged')], { ids, mask }).logits[0] as number[][];
    expect(maxAbsDiff(ours.flat(), fromMerged.map((row) => row.slice(0, 700)).flat())).toBeLessThan(1e-4);
    const adapter = skd(['export', 'runs/straight', '--out', 'adapter', '--adapter', '--json'], dir);
    expect(adapter.stderr).not.toMatch(/error/i);
    expect(adapter.status).toBe(0);
    expect(JSON.parse(adapter.stdout)).toMatchObject({ rank: 4, alpha: 8, base: student, reloadedLogitsMaxDiff: 0 });
    const adapterConfig = JSON.parse(fs.readFileSync(path.join(dir, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(adapterConfig).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    });
    // --base names another base in adapter_config.json (the folder's tensors are the same).
    const renamed = skd(['export', 'runs/straight', '--out', 'adapter-renamed', '--adapter', '--base', 'my-org/base', '--json'], dir);
    expect(renamed.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'adapter-renamed', 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe('my-org/base');
    const fromPeft = runReference<{ logits: number[][][] }>(['logits', student, '--adapter', path.join(dir, 'adapter')], { ids, mask }).logits[0] as number[][];
    expect(maxAbsDiff(ours.flat(), fromPeft.map((row) => row.slice(0, 700)).flat())).toBeLessThan(1e-4);
    // A student that trained every weight has no adapters to export.
    fs.writeFileSync(
      path.join(dir, 'full.json'),
      JSON.stringify({ ...config, student: { kind: 'hf', options: { path: student } }, training: { ...config.training, steps: 1 } }),
    );
    expect(skd(['distill', 'full.json', '--out', 'runs/full'], dir).status).toBe(0);
    const refused = skd(['export', 'runs/full', '--out', 'none', '--adapter'], dir);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('holds no LoRA adapters');
    expect(fs.existsSync(path.join(dir, 'none'))).toBe(false);
  });
});

describe('a LoRA student over a bfloat16 base (end to end): the losses of the same base in float32, and exports PEFT and transformers read', () => {
  const teacher = referenceModel('qwen2', { seed: 1 });
  const student = referenceModel('qwen2', { seed: 2, dtype: 'bfloat16' });
  const dir = tmp();
  const config = {
    seed: 5,
    tokenizer: { kind: 'hf', options: { path: student } },
    teacher: { kind: 'hf', options: { path: teacher } },
    student: { kind: 'hf', options: { path: student, dtype: 'bfloat16', lora: { rank: 4, alpha: 8, targets: ['q', 'v', 'o', 'up', 'down'] } } },
    sampler: { kind: 'on-policy', options: { maxNewTokens: 12 } },
    divergence: { kind: 'forward-kl' },
    dataset: { kind: 'jsonl', options: { files: chatData(dir) } },
    training: { steps: 3, batchSize: 2, learningRate: 5e-3, checkpointEvery: 0, evalEvery: 0, testLimit: 2, maxNewTokens: 4, lossChunk: 5 },
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config, null, 2));

  it("check names the 16-bit base; the run trains to the float32 base's losses (within 1e-4 at every step)", () => {
    const checked = skd(['check', 'run.json'], dir);
    expect(checked.status).toBe(0);
    expect(checked.stdout).toMatch(
      /student +hf \(context \d+, vocabulary \d+; LoRA rank 4 on q, v, o, up, down: [\d,]+ of [\d,]+ parameters train; weight matrices in bfloat16\)/,
    );
    distilsToTheSameLosses(dir, 'student.options.dtype=float32');
    // The saved student keeps its base in 16 bits.
    const saved = fs.readFileSync(path.join(dir, 'runs/half/model/model.safetensors'));
    const header = JSON.parse(saved.subarray(8, 8 + Number(saved.readBigUInt64LE(0))).toString('utf8')) as Record<string, { dtype: string }>;
    expect(header['model.layers.0.mlp.down_proj.weight']?.dtype).toBe('BF16');
  });

  it('exports the adapters for PEFT and the merged model for transformers, both reading back to its logits within 1e-4', async () => {
    await useBackend('wasm');
    const ids = [[3, 17, 250, 9, 41, 600, 12, 5]];
    const mask = ids.map((r) => r.map(() => 1));
    const trained = loadCheckpoint(path.join(dir, 'runs/half/model'));
    expect((trained.model as DecoderModel).dtype).toBe('bfloat16');
    const ours = tf.tidy(() => (trained.model.logits(tf.tensor2d(ids, undefined, 'int32')).arraySync() as number[][][])[0] as number[][]);
    trained.model.dispose();
    const adapter = skd(['export', 'runs/half', '--out', 'adapter', '--adapter', '--json'], dir);
    expect(adapter.stderr).not.toMatch(/error/i);
    expect(adapter.status).toBe(0);
    expect(JSON.parse(adapter.stdout)).toMatchObject({ rank: 4, alpha: 8, base: student, reloadedLogitsMaxDiff: 0 });
    const fromPeft = runReference<{ logits: number[][][] }>(['logits', student, '--adapter', path.join(dir, 'adapter')], { ids, mask }).logits[0] as number[][];
    expect(maxAbsDiff(ours.flat(), fromPeft.map((row) => row.slice(0, 700)).flat())).toBeLessThan(1e-4);
    const merged = skd(['export', 'runs/half', '--out', 'merged', '--json'], dir);
    expect(merged.status).toBe(0);
    const fromMerged = runReference<{ logits: number[][][] }>(['logits', path.join(dir, 'merged')], { ids, mask }).logits[0] as number[][];
    expect(maxAbsDiff(ours.flat(), fromMerged.map((row) => row.slice(0, 700)).flat())).toBeLessThan(1e-4);
  });
});
