import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, SkdError, VocabularyMismatchError, type Tokenizer } from '@skd/core';
import { BpeTokenizer, ByteTokenizer, DecoderModel, decoderConfig, GptModel, gptConfigSchema, saveCheckpoint } from '@skd/models';
import { applyOverrides } from './config-file';
import { buildRun, planRun } from './build-run';
import { createRegistries } from './registry';

const fixtures = path.join(__dirname, '__fixtures__');

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function baseConfig(): Record<string, unknown> {
  return {
    seed: 3,
    backend: 'cpu',
    student: { kind: 'bigram', options: { contextLength: 64 } },
    dataset: {
      kind: 'inline',
      options: {
        train: [
          { prompt: 'a', response: 'bc' },
          { prompt: 'xy', response: 'z' },
        ],
      },
    },
  };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('planRun (validation before any tensor)', () => {
  it('names a misspelled top-level key and suggests the right one, making no tensor', () => {
    const before = tf.memory().numTensors;
    const error = configError(() => planRun({ ...baseConfig(), seeed: 1 }, { source: 'run.json' }));
    expect(error.message).toContain('run.json');
    expect(error.issues).toEqual([expect.objectContaining({ path: 'seeed', message: expect.stringContaining('did you mean "seed"?') })]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('names a misspelled option inside a component with its full path', () => {
    const config = { ...baseConfig(), divergence: { kind: 'jsd', options: { betta: 0.3 } } };
    const error = configError(() => planRun(config));
    expect(error.issues[0]?.path).toBe('divergence.options.betta');
    expect(error.issues[0]?.message).toContain('did you mean "beta"?');
  });

  it('quotes the bad value of a wrongly typed or out-of-range option', () => {
    const config = { ...baseConfig(), seed: 'x', divergence: { kind: 'jsd', options: { beta: 2 } } };
    const error = configError(() => planRun(config));
    const byPath = Object.fromEntries(error.issues.map((i) => [i.path, i.message]));
    expect(byPath['seed']).toContain('got "x"');
    expect(byPath['divergence.options.beta']).toContain('got 2');
  });

  it('lists the known kinds for an unknown kind', () => {
    const error = configError(() => planRun({ ...baseConfig(), sampler: { kind: 'skdd' } }));
    expect(error.issues[0]?.path).toBe('sampler.kind');
    expect(error.issues[0]?.message).toMatch(/^Unknown sampler kind "skdd"\. Known kinds: .*supervised/);
  });

  it('reports a missing required component and every problem at once', () => {
    const { student: _student, ...rest } = baseConfig();
    const error = configError(() => planRun({ ...rest, divergence: { kind: 'nope' } }));
    const paths = error.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['student']));
  });

  it('reports a missing or mismatched user module with the path it looked at', () => {
    const missing = configError(() => planRun({ ...baseConfig(), sampler: { kind: 'x', module: './nope.js' } }, { baseDir: fixtures }));
    expect(missing.issues[0]).toEqual({ path: 'sampler.module', message: expect.stringContaining('does not exist') });
    const wrongKind = configError(() => planRun({ ...baseConfig(), sampler: { kind: 'other', module: './reverse-sampler.js' } }, { baseDir: fixtures }));
    expect(wrongKind.issues[0]?.message).toContain('exports sampler "reverse-reference", not the sampler "other"');
  });
});

describe('buildRun (the composition root)', () => {
  it('builds every component from the config into a run and frees them on dispose', async () => {
    const before = tf.memory().numTensors;
    const run = await buildRun(baseConfig());
    expect(run.backend.name).toBe('cpu');
    expect(run.tokenizer.vocabSize).toBe(259);
    expect(run.student.vocabSize).toBe(259);
    expect(run.teacher).toBeUndefined();
    expect(run.divergence.name).toBe('cross-entropy');
    const batch = await run.sampler.sample({ prompts: [[258, 97]], references: [[98, 257]], ids: ['0'] }, { step: 0, totalSteps: 1 });
    expect(batch.tokens.arraySync()).toEqual([[258, 97, 98, 257]]);
    batch.dispose();
    run.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('swaps the divergence with a one-line config change', async () => {
    const a = await buildRun({ ...baseConfig(), teacher: { kind: 'bigram' }, divergence: { kind: 'forward-kl' } });
    const b = await buildRun({ ...baseConfig(), teacher: { kind: 'bigram' }, divergence: { kind: 'jsd', options: { beta: 0.5 } } });
    expect(a.divergence.name).toBe('forward-kl');
    expect(b.divergence.name).toBe('jsd');
    a.dispose();
    b.dispose();
  });

  it("breaks every evaluator's metrics down by an example field when training.breakdownBy names one", async () => {
    const config = { ...baseConfig(), evaluators: [{ kind: 'exact-match' }] };
    const plain = await buildRun(config);
    const split = await buildRun({ ...config, training: { breakdownBy: 'kind' } });
    const predictions = ['add', 'add', 'sub'].map((kind, i) => ({
      example: { id: String(i), prompt: 'q', response: '7', fields: { kind } },
      text: i === 0 ? '7' : '8',
    }));
    expect(await plain.evaluators[0]?.evaluate(predictions)).toEqual({ exactMatch: 1 / 3, count: 3 });
    expect(await split.evaluators[0]?.evaluate(predictions)).toEqual({ exactMatch: 1 / 3, count: 3, 'exactMatch[add]': 0.5, 'exactMatch[sub]': 0 });
    plain.dispose();
    split.dispose();
  });

  it('uses a custom sampler loaded from a module path in the config', async () => {
    const config = { ...baseConfig(), sampler: { kind: 'reverse-reference', module: './reverse-sampler.js', options: { keep: 2 } } };
    const run = await buildRun(config, { baseDir: fixtures });
    const batch = await run.sampler.sample({ prompts: [[258]], references: [[97, 98, 99, 257]], ids: ['0'] }, { step: 0, totalSteps: 1 });
    expect(batch.stats).toEqual({ marker: 7 });
    expect(batch.tokens.arraySync()).toEqual([[258, 99, 98]]); // reversed, then cut to keep = 2
    batch.dispose();
    run.dispose();
  });

  it("validates a custom component's options with its own schema", () => {
    const config = { ...baseConfig(), sampler: { kind: 'reverse-reference', module: './reverse-sampler.js', options: { keep: 0 } } };
    const error = configError(() => planRun(config, { baseDir: fixtures }));
    expect(error.issues[0]?.path).toBe('sampler.options.keep');
  });

  it("refuses a teacher whose vocabulary differs from the student's, and frees what it built", async () => {
    const before = tf.memory().numTensors;
    const config = { ...baseConfig(), teacher: { kind: 'wide-bigram', module: './wide-model.js' }, divergence: { kind: 'forward-kl' } };
    await expect(buildRun(config, { baseDir: fixtures })).rejects.toThrow(VocabularyMismatchError);
    await expect(buildRun(config, { baseDir: fixtures })).rejects.toThrow('teacher vocab 300 vs student vocab 259');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives each run its own container and seeded streams: same seed, same weights', async () => {
    const a = await buildRun(baseConfig());
    const b = await buildRun(baseConfig());
    const c = await buildRun({ ...baseConfig(), seed: 4 });
    const weights = (run: typeof a) => Array.from(run.student.trainableVariables[0]?.dataSync() ?? []);
    expect(weights(a)).toEqual(weights(b));
    expect(weights(a)).not.toEqual(weights(c));
    [a, b, c].forEach((run) => run.dispose());
  });

  it('accepts extra components registered by the caller', async () => {
    const registries = createRegistries();
    expect(() => registries.divergence.register(registries.divergence.get('tvd', 'x'))).toThrow(SkdError);
    expect(registries.sampler.kinds()).toContain('supervised');
  });
});

describe('applyOverrides', () => {
  it('sets nested values, parsing JSON where it parses', () => {
    const config = applyOverrides(baseConfig(), ['sampler.options.topK=10', 'seed=7', 'student.kind=bigram', 'evaluators.0.kind=exact-match']);
    expect(config).toMatchObject({ seed: 7, sampler: { options: { topK: 10 } }, evaluators: [{ kind: 'exact-match' }] });
  });

  it('rejects malformed overrides', () => {
    expect(() => applyOverrides({}, ['seed'])).toThrow('key.path=value');
    expect(() => applyOverrides({ seed: 1 }, ['seed.x=1'])).toThrow('seed is 1, not an object');
  });

  it('refuses paths through __proto__, constructor or prototype, leaving Object.prototype untouched', () => {
    for (const set of ['__proto__.polluted=1', 'training.__proto__.polluted=1', 'constructor.prototype.polluted=1', 'sampler.constructor=1']) {
      expect(() => applyOverrides(baseConfig(), [set])).toThrow(/cannot be part of a config path \(it names the prototype of an object/);
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(() => applyOverrides({}, ['a..b=1'])).toThrow('empty segment');
  });
});

describe('gpt models from a config', () => {
  it('builds a GPT student whose vocabulary comes from the tokenizer', async () => {
    const run = await buildRun({ ...baseConfig(), student: { kind: 'gpt', options: { layers: 1, dModel: 16, heads: 2, contextLength: 32 } } });
    expect(run.student.vocabSize).toBe(259);
    expect(run.student.contextLength).toBe(32);
    run.dispose();
  });

  it('rejects a width not divisible by the heads before building anything', () => {
    const error = configError(() => planRun({ ...baseConfig(), student: { kind: 'gpt', options: { dModel: 30, heads: 4 } } }));
    expect(error.issues[0]).toEqual({
      path: 'student.options',
      message: expect.stringContaining('dModel must be divisible by heads, got dModel 30 and heads 4'),
    });
  });
});

describe('models and tokenizers from checkpoints', () => {
  async function writeCheckpoint(dir: string, tokenizer: Tokenizer, seed: number) {
    const model = new GptModel(gptConfigSchema.parse({ vocabSize: tokenizer.vocabSize, contextLength: 32, layers: 1, heads: 2, dModel: 8 }), { seed });
    await saveCheckpoint(dir, { model, tokenizer });
    model.dispose();
  }

  it('builds teacher, student and tokenizer from checkpoint folders', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-run-'));
    await writeCheckpoint(path.join(dir, 'teacher'), new ByteTokenizer(), 1);
    await writeCheckpoint(path.join(dir, 'student'), new ByteTokenizer(), 2);
    const run = await buildRun(
      {
        ...baseConfig(),
        tokenizer: { kind: 'checkpoint', options: { path: 'teacher' } },
        teacher: { kind: 'checkpoint', options: { path: 'teacher' } },
        student: { kind: 'checkpoint', options: { path: 'student' } },
        divergence: { kind: 'forward-kl' },
      },
      { baseDir: dir },
    );
    expect(run.teacher?.contextLength).toBe(32);
    expect(run.tokenizer.fingerprint).toBe(new ByteTokenizer().fingerprint);
    run.dispose();
  });

  it("training.outputPoolBytes sizes the native backend's output pool for its run, a later run without it gets the default back, and another backend notes it does not apply", async () => {
    const limit = () => (tf.backend() as unknown as { poolLimitBytes?: number }).poolLimitBytes;
    const sized = await buildRun({ ...baseConfig(), backend: 'native', training: { outputPoolBytes: 12345 } });
    expect(limit()).toBe(12345);
    expect(sized.notes.join('\n')).not.toMatch(/outputPoolBytes/);
    sized.dispose();
    const plain = await buildRun({ ...baseConfig(), backend: 'native' });
    expect(limit()).toBe(Number(process.env['SKD_POOL_BYTES'] || 2 ** 30)); // the default
    plain.dispose();
    const cpu = await buildRun({ ...baseConfig(), training: { outputPoolBytes: 0 } });
    expect(cpu.notes).toContain("training.outputPoolBytes applies to the native backend's output pool; the cpu backend has none, so it changes nothing here");
    cpu.dispose();
  });

  it('holds a checkpoint teacher in the dtype asked for; a GPT teacher or a student in 16 bits is refused, a LoRA base in 16 bits is not', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-run-'));
    const tokenizer = new ByteTokenizer();
    const llama = new DecoderModel(decoderConfig({ vocabSize: tokenizer.vocabSize, contextLength: 32, layers: 1, heads: 2, dModel: 8, dFf: 16 }), { seed: 3 });
    await saveCheckpoint(path.join(dir, 'llama'), { model: llama, tokenizer });
    llama.dispose();
    await writeCheckpoint(path.join(dir, 'gpt'), tokenizer, 1);
    const config = (teacher: string, dtype: string, role: 'teacher' | 'student' = 'teacher') => ({
      ...baseConfig(),
      [role]: { kind: 'checkpoint', options: { path: teacher, dtype } },
      ...(role === 'teacher' ? {} : { teacher: { kind: 'checkpoint', options: { path: 'llama' } } }),
      divergence: { kind: 'forward-kl' },
    });
    const run = await buildRun(config('llama', 'bfloat16'), { baseDir: dir });
    expect((run.teacher as DecoderModel).dtype).toBe('bfloat16');
    expect((run.teacher as DecoderModel).halves.size).toBeGreaterThan(0);
    run.dispose();
    const before = tf.memory().numTensors;
    await expect(buildRun(config('gpt', 'float16'), { baseDir: dir })).rejects.toThrow(
      'float16 weights are held by Llama-family decoders; this model is a GPT',
    );
    await expect(buildRun(config('llama', 'bfloat16', 'student'), { baseDir: dir })).rejects.toThrow(
      'a student that trains every weight trains them in float32; bfloat16 weights are for frozen ones',
    );
    expect(tf.memory().numTensors).toBe(before);
    // Under LoRA adapters the student's base may be 16-bit: the adapters train, in float32.
    const adapted = await buildRun(
      { ...config('llama', 'bfloat16', 'student'), student: { kind: 'checkpoint', options: { path: 'llama', dtype: 'bfloat16', lora: { rank: 2 } } } },
      { baseDir: dir },
    );
    const student = adapted.student as DecoderModel;
    expect(student.dtype).toBe('bfloat16');
    expect(student.halves.size).toBeGreaterThan(0);
    expect(student.trainableVariables.length).toBeGreaterThan(0);
    expect(student.trainableVariables.every((v) => /lora_[AB]$/.test(v.name) && v.dtype === 'float32')).toBe(true);
    adapted.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('builds a teacher with its own tokenizer (teacherTokenizer) for uld and gold, and refuses what cannot work across tokenizers', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-run-'));
    const bpe = BpeTokenizer.train(['the cat sat on the mat', 'the dog sat on the log'], { vocabSize: 262, minFrequency: 1 });
    await writeCheckpoint(path.join(dir, 'teacher'), bpe, 1);
    const before = tf.memory().numTensors;
    const cross = {
      ...baseConfig(),
      teacherTokenizer: { kind: 'checkpoint', options: { path: 'teacher' } },
      teacher: { kind: 'checkpoint', options: { path: 'teacher' } },
      sampler: { kind: 'on-policy', options: { maxNewTokens: 4 } },
      divergence: { kind: 'gold', options: { beta: 0.2 } },
    };
    const run = await buildRun(cross, { baseDir: dir });
    expect(run.teacherTokenizer?.fingerprint).toBe(bpe.fingerprint);
    expect(run.tokenizer.kind).toBe('bytes');
    expect(run.teacher?.vocabSize).toBe(bpe.vocabSize);
    run.dispose();
    const wrongDivergence = await buildRun({ ...cross, divergence: { kind: 'forward-kl' } }, { baseDir: dir }).catch((e: unknown) => e as ConfigError);
    expect(wrongDivergence).toBeInstanceOf(ConfigError);
    expect((wrongDivergence as ConfigError).issues).toEqual([
      expect.objectContaining({ path: 'divergence.kind', message: expect.stringMatching(/uld, gold or alm/) }),
    ]);
    const skd = await buildRun({ ...cross, sampler: { kind: 'skd', options: { topK: 5 } } }, { baseDir: dir });
    skd.dispose();
    await expect(buildRun({ ...cross, sampler: { kind: 'skd', options: { topK: 5, acceptTest: 'resample' } } }, { baseDir: dir })).rejects.toThrow(
      /acceptTest "draft"/,
    );
    // Cross-entropy never runs the teacher: continued SFT beside a teacher with its own tokenizer builds.
    const sft = await buildRun({ ...cross, sampler: { kind: 'supervised' }, divergence: { kind: 'cross-entropy' } }, { baseDir: dir });
    expect(sft.teacherTokenizer?.fingerprint).toBe(bpe.fingerprint);
    sft.dispose();
    // The run's own tokenizer named again: nothing to carry, and the run says so.
    const same = await buildRun(
      { ...baseConfig(), teacherTokenizer: { kind: 'bytes' }, teacher: { kind: 'bigram' }, divergence: { kind: 'forward-kl' } },
      { baseDir: dir },
    );
    expect(same.teacherTokenizer).toBeUndefined();
    expect(same.notes.join('\n')).toMatch(/teacherTokenizer: it is the run's tokenizer/);
    same.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a teacher trained with another tokenizer, naming both and the fix', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-run-'));
    const bpe = BpeTokenizer.train(['the cat sat on the mat', 'the dog sat on the log'], { vocabSize: 262, minFrequency: 1 });
    await writeCheckpoint(path.join(dir, 'teacher'), bpe, 1);
    const before = tf.memory().numTensors;
    const config = { ...baseConfig(), teacher: { kind: 'checkpoint', options: { path: 'teacher' } }, divergence: { kind: 'forward-kl' } };
    const error = await buildRun(config, { baseDir: dir }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(VocabularyMismatchError);
    expect((error as Error).message).toMatch(
      /teacher checkpoint teacher was trained with tokenizer bpe:\w+ \(vocabulary 262\), the run uses bytes-v1:259 \(vocabulary 259\).*Fix: set "tokenizer": \{ "kind": "checkpoint"/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
