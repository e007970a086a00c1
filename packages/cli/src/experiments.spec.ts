import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadExperimentConfig } from './experiment';
import { expandGrid, sweepSchema } from './sweep';

/**
 * The committed experiments stay runnable: every config and every run of every sweep validates
 * against the current schemas, and every checkpoint they name is committed. Nothing is built.
 */
const root = path.resolve(__dirname, '../../../experiments');
const jsonFiles = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'models' ? [] : jsonFiles(full);
    // A BPE tokenizer is two Hugging Face files beside the configs, not a config.
    return e.name.endsWith('.json') && !['tokenizer.json', 'tokenizer_config.json'].includes(e.name) ? [full] : [];
  });
const files = jsonFiles(root);
const sweeps = files.filter((f) => 'grid' in (JSON.parse(fs.readFileSync(f, 'utf8')) as object));
const configs = files.filter((f) => !sweeps.includes(f));

/** Every checkpoint folder a config names (tokenizer, teacher, student). */
function checkpoints(config: { [slot: string]: unknown }, baseDir: string): string[] {
  return ['tokenizer', 'teacher', 'student'].flatMap((slot) => {
    const ref = config[slot] as { kind?: string; options?: { path?: string } } | undefined;
    return ref?.kind === 'checkpoint' && ref.options?.path ? [path.resolve(baseDir, ref.options.path)] : [];
  });
}

describe('committed experiments', () => {
  it('finds the per-task configs and sweeps', () => {
    expect(configs.length).toBeGreaterThanOrEqual(12);
    expect(sweeps.map((s) => path.relative(root, s)).sort()).toEqual([
      'arithmetic/compare.json',
      'arithmetic/tune.json',
      'instructions/compare.json',
      'paper-table/arithmetic.json',
      'paper-table/instructions.json',
      'paper-table/summarization.json',
      'paper-table/translation.json',
      'summarization/tune.json',
      'translation/tune.json',
    ]);
  });

  it.each(configs.map((f) => [path.relative(root, f), f]))('%s validates', async (_name, file) => {
    await expect(loadExperimentConfig(file, [])).resolves.toBeDefined();
  });

  it.each(sweeps.map((f) => [path.relative(root, f), f]))('every run of %s validates, from committed checkpoints', async (_name, file) => {
    const sweep = sweepSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
    const base = path.resolve(path.dirname(file), sweep.base);
    for (const run of expandGrid(sweep.grid)) {
      const { config, baseDir } = await loadExperimentConfig(base, [...sweep.set, ...run.sets]);
      if (sweep.mode === 'distill') expect(config.teacher).toBeDefined();
      for (const folder of checkpoints(config as unknown as Record<string, unknown>, baseDir)) expect(fs.existsSync(path.join(folder, 'config.json')) ? folder : `missing ${folder}`).toBe(folder);
    }
  });

  it('the paper table runs the eight methods at two data sizes with three seeds on each task', () => {
    for (const file of sweeps.filter((f) => f.includes('paper-table'))) {
      const runs = expandGrid(sweepSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8'))).grid);
      expect(runs).toHaveLength(48);
      expect([...new Set(runs.map((r) => r.group.split('__')[0]))]).toEqual([
        'method-supervised-ft', 'method-supervised-kd', 'method-seqkd', 'method-on-policy', 'method-gkd', 'method-imitkd', 'method-distillm', 'method-skd',
      ]);
    }
  });

  it('every script and config the README and docs/results.md name is committed', () => {
    const repo = path.resolve(root, '..');
    for (const doc of ['README.md', 'docs/results.md', 'docs/paper-index.md']) {
      const text = fs.readFileSync(path.join(repo, doc), 'utf8');
      const named = [...text.matchAll(/\b((?:experiments|tools)\/[\w./-]+\.(?:sh|json|cjs))/g)].map((m) => m[1] as string);
      expect(named.length).toBeGreaterThan(0);
      for (const file of named) expect(`${doc}: ${fs.existsSync(path.join(repo, file)) ? 'ok' : 'missing'} ${file}`).toBe(`${doc}: ok ${file}`);
    }
  });

  it('every command of docs/paper-index.md validates', async () => {
    const index = fs.readFileSync(path.resolve(root, '../docs/paper-index.md'), 'utf8');
    const base = path.resolve(root, '..', /C=(experiments\/\S+\.json)/.exec(index)?.[1] ?? 'missing');
    const commands = index.split('\n').filter((l) => l.includes('`skd distill $C'));
    expect(commands).toHaveLength(9);
    for (const line of commands) {
      const sets = [...line.matchAll(/--set '([^']+)'/g)].map((m) => m[1] as string);
      await expect(loadExperimentConfig(base, sets)).resolves.toBeDefined();
    }
  });
});
