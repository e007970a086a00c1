import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { applyOverrides, planRun } from '@skd/config';
import { Rng, SkdError } from '@skd/core';
import { JsonlDataset } from '@skd/datasets';
import { BpeTokenizer, decodeSafetensors, encodeSafetensors } from '@skd/models';
import { expandGrid, sweepSchema } from '@skd/experiment';

/**
 * Property-based tests of every parser that reads what users and other tools hand in: each input is
 * either accepted or refused with skd's own error (a message, never a TypeError, a RangeError from a
 * typed array or a hang). Sizes are bounded; the budget is SKD_FUZZ_RUNS cases per parser (CI: a few
 * hundred, seconds, seeded; `npm run fuzz`: 20000 from a fresh seed; SKD_FUZZ_SEED replays one).
 */
const runs = Number(process.env['SKD_FUZZ_RUNS'] ?? 300);
// The test suite's budget is seeded (the same cases every run); larger budgets explore from a fresh seed, which fast-check prints on failure.
const seed = process.env['SKD_FUZZ_SEED'] !== undefined ? Number(process.env['SKD_FUZZ_SEED']) : runs <= 300 ? 20261123 : undefined;
const settings = { numRuns: runs, interruptAfterTimeLimit: 60_000 * Math.max(1, runs / 300), ...(seed !== undefined ? { seed } : {}) };

/** Runs `fn`; if it throws, the error must be an SkdError with a message. */
function acceptsOrRefuses(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof SkdError) || error.message.length === 0) throw error;
  }
}

async function acceptsOrRefusesAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof SkdError) || error.message.length === 0) throw error;
  }
}

const segment = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'seed', 'training', 'steps', '0', '', 'sampler', 'options'),
  fc.string({ maxLength: 8 }),
);
const keyPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join('.'));
const json = fc.jsonValue({ maxDepth: 3 });

afterEach(() => expect(Object.prototype).toEqual({})); // nothing reached the prototype of every object

describe('fuzz: --set overrides', () => {
  it('apply or refuse with a ConfigError, never touching Object.prototype', () => {
    fc.assert(
      fc.property(
        json,
        fc.array(
          fc.oneof(
            fc.tuple(keyPath, json).map(([k, v]) => `${k}=${JSON.stringify(v)}`),
            fc.string({ maxLength: 20 }),
          ),
          { maxLength: 4 },
        ),
        (config, sets) => acceptsOrRefuses(() => applyOverrides(config, sets)),
      ),
      settings,
    );
  });
});

describe('fuzz: config schema', () => {
  const base = {
    seed: 1,
    student: { kind: 'bigram' },
    sampler: { kind: 'supervised' },
    divergence: { kind: 'cross-entropy' },
    dataset: { kind: 'inline', options: { train: [{ prompt: 'a', response: 'b' }] } },
    training: { steps: 1 },
  };
  it('plans or refuses any config a --set can produce', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(keyPath, json), { maxLength: 3 }), (sets) =>
        acceptsOrRefuses(() =>
          planRun(
            applyOverrides(
              base,
              sets.map(([k, v]) => `${k}=${JSON.stringify(v)}`),
            ),
          ),
        ),
      ),
      settings,
    );
  });

  it('plans or refuses arbitrary JSON documents', () => {
    fc.assert(
      fc.property(json, (doc) => acceptsOrRefuses(() => planRun(doc))),
      settings,
    );
  });
});

describe('fuzz: sweep files', () => {
  it('parse and expand, or are refused', () => {
    const grid = fc.dictionary(
      fc.oneof(
        keyPath,
        keyPath.map((k) => `@${k}`),
      ),
      fc.array(json, { maxLength: 3 }),
      { maxKeys: 3 },
    );
    fc.assert(
      fc.property(
        fc.record(
          { base: fc.string({ maxLength: 5 }), out: fc.string({ maxLength: 5 }), grid, set: fc.array(fc.string({ maxLength: 10 }), { maxLength: 2 }) },
          { requiredKeys: [] },
        ),
        (sweep) =>
          acceptsOrRefuses(() => {
            const parsed = sweepSchema.safeParse(sweep);
            if (parsed.success) expandGrid(parsed.data.grid);
          }),
      ),
      settings,
    );
  });
});

describe('fuzz: JSONL records', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-fuzz-'));
  it('read into examples, or refused naming file:line', async () => {
    const line = fc.oneof(
      json.map((v) => JSON.stringify(v)),
      fc.record({ prompt: json, response: json }, { requiredKeys: [] }).map((r) => JSON.stringify(r)),
      fc.string({ maxLength: 30 }),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 5 }), fc.constantFrom<'fail' | 'skip'>('fail', 'skip'), async (lines, onInvalid) => {
        const file = path.join(dir, `f${(n += 1)}.jsonl`);
        fs.writeFileSync(file, lines.join('\n'));
        const dataset = new JsonlDataset({
          name: 'fuzz',
          files: { train: file },
          baseDir: dir,
          fields: { prompt: 'prompt', response: 'response', extra: [] },
          template: '{prompt}',
          limit: undefined,
          shuffle: false,
          onInvalid,
          rng: Rng.create(1),
        });
        await acceptsOrRefusesAsync(async () => {
          for await (const example of dataset.split('train')) expect(typeof example.response).toBe('string');
        });
      }),
      { ...settings, numRuns: Math.max(20, Math.floor(runs / 3)) },
    );
  });
});

describe('fuzz: tokenizer.json', () => {
  it('loads or is refused', () => {
    const trained = BpeTokenizer.train(['abc abd 12 3'], { vocabSize: 262, minFrequency: 1 }).toJSON() as Record<string, unknown>;
    const mutated = fc
      .tuple(fc.constantFrom('model', 'added_tokens', 'pre_tokenizer', 'decoder', 'version', 'normalizer'), json)
      .map(([k, v]) => ({ ...trained, [k]: v }));
    fc.assert(
      fc.property(fc.oneof(json, mutated), (doc) => acceptsOrRefuses(() => BpeTokenizer.fromJSON(doc, 'fuzz.json'))),
      settings,
    );
  });
});

describe('fuzz: safetensors', () => {
  it('headers and bytes decode or are refused (never a RangeError from a typed array)', () => {
    const good = encodeSafetensors(new Map([['w', { shape: [2, 3], data: new Float32Array(6) }]]), {});
    const header = (h: unknown) => {
      const text = Buffer.from(JSON.stringify(h));
      const bytes = new Uint8Array(8 + text.length + 24);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
      bytes.set(text, 8);
      return bytes;
    };
    const entry = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U8'), json),
        shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 8 }), { maxLength: 3 }), json),
        data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -4, max: 40 }), fc.integer({ min: -4, max: 40 })), json),
      },
      { requiredKeys: [] },
    );
    const flips = fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }).map((changes) => {
      const bytes = good.slice();
      for (const [at, value] of changes) bytes[at] = value;
      return bytes;
    });
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.dictionary(fc.string({ maxLength: 4 }), entry, { maxKeys: 3 }).map(header),
      flips,
      fc.nat(good.length).map((n) => good.slice(0, n)),
    );
    fc.assert(
      fc.property(input, (bytes) => acceptsOrRefuses(() => decodeSafetensors(bytes, 'fuzz.safetensors'))),
      settings,
    );
  });
});
