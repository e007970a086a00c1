import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadExperimentConfig } from './experiment';
import { expandGrid, loadSweep, sweepSchema } from './sweep';

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
  return ['tokenizer', 'teacherTokenizer', 'teacher', 'student'].flatMap((slot) => {
    const ref = config[slot] as { kind?: string; options?: { path?: string } } | undefined;
    return ref?.kind === 'checkpoint' && ref.options?.path ? [path.resolve(baseDir, ref.options.path)] : [];
  });
}

describe('committed experiments', () => {
  it('finds the per-task configs and sweeps', () => {
    expect(configs.length).toBeGreaterThanOrEqual(12);
    expect(sweeps.map((s) => path.relative(root, s)).sort()).toEqual([
      'arithmetic/compare.json',
      'arithmetic/tune-100.json',
      'arithmetic/tune.json',
      'cross-tokenizer/arithmetic-10k-prompts.json',
      'cross-tokenizer/arithmetic-lr1e-4.json',
      'cross-tokenizer/arithmetic.json',
      'instructions/compare.json',
      'new-methods/arithmetic.json',
      'new-methods/instructions.json',
      'paper-official/ablation-block.json',
      'paper-official/ablation-k.json',
      'paper-official/ablation-temperature.json',
      'paper-official/arithmetic.json',
      'paper-official/instructions.json',
      'paper-official/robustness-arithmetic.json',
      'paper-official/robustness-instructions.json',
      'paper-official/summarization.json',
      'paper-official/translation.json',
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
    // As a sweep reads it: its values resolve from the sweep file's folder, whatever the current one is.
    const sweep = loadSweep(file);
    for (const run of sweep.runs) {
      const { config, baseDir } = await loadExperimentConfig(sweep.base, run.sets);
      if (sweep.mode === 'distill') expect(config.teacher).toBeDefined();
      for (const folder of checkpoints(config as unknown as Record<string, unknown>, baseDir))
        expect(fs.existsSync(path.join(folder, 'config.json')) ? folder : `missing ${folder}`).toBe(folder);
    }
  });

  it('the paper table runs the eight methods at two data sizes with three seeds on each task', () => {
    for (const file of sweeps.filter((f) => f.includes('paper-table'))) {
      const runs = expandGrid(sweepSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8'))).grid);
      expect(runs).toHaveLength(48);
      expect([...new Set(runs.map((r) => r.group.split('__')[0]))]).toEqual([
        'method-supervised-ft',
        'method-supervised-kd',
        'method-seqkd',
        'method-on-policy',
        'method-gkd',
        'method-imitkd',
        'method-distillm',
        'method-skd',
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
    expect(commands).toHaveLength(11); // the paper's nine methods, MiniLLM and TAID
    // Across tokenizers: ULD, GOLD, ALM and SKD on their own base.
    const across = path.resolve(root, '..', /X=(experiments\/\S+\.json)/.exec(index)?.[1] ?? 'missing');
    const acrossCommands = index.split('\n').filter((l) => l.includes('`skd distill $X'));
    expect(acrossCommands).toHaveLength(4);
    for (const [config, line] of [...commands.map((l) => [base, l] as const), ...acrossCommands.map((l) => [across, l] as const)]) {
      const sets = [...line.matchAll(/--set '([^']+)'/g)].map((m) => m[1] as string);
      await expect(loadExperimentConfig(config, sets)).resolves.toBeDefined();
    }
  });
});

describe('experiments/paper-table/results.sh', () => {
  const script = path.join(root, 'paper-table/results.sh');
  // A repository of its own (the script works from two folders above itself) holding one finished
  // run, one unfinished run and one evaluation folder.
  function scratchRepo(): string {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-results-'));
    fs.mkdirSync(path.join(repo, 'experiments/paper-table'), { recursive: true });
    fs.copyFileSync(script, path.join(repo, 'experiments/paper-table/results.sh'));
    const task = path.join(repo, 'runs/paper-table/arithmetic');
    const finished = path.join(task, 'method-skd__data-1k__seed-1');
    fs.mkdirSync(path.join(finished, 'eval'), { recursive: true });
    fs.mkdirSync(path.join(finished, 'model'));
    fs.writeFileSync(path.join(finished, 'summary.json'), '{"finalMetrics":{"exactMatch":0.4},"seed":1}\n');
    fs.writeFileSync(path.join(finished, 'config.json'), '{}\n');
    fs.writeFileSync(
      path.join(finished, 'metrics.jsonl'),
      '{"type":"step","step":1}\n{"type":"progress","phase":"eval test","done":8,"total":300}\n{"type":"eval","step":1}\n',
    );
    fs.writeFileSync(path.join(finished, 'eval/test-step-000001.bootstrap.json'), '{}\n');
    fs.writeFileSync(path.join(finished, 'eval/test-step-000001.jsonl'), '{"id":"test.jsonl:1"}\n');
    fs.writeFileSync(path.join(finished, 'eval/eval-step-000001.jsonl'), '{"id":"eval.jsonl:1"}\n');
    fs.writeFileSync(path.join(finished, 'model/model.safetensors'), 'weights');
    fs.mkdirSync(path.join(task, 'method-sft__data-1k__seed-1'));
    fs.writeFileSync(path.join(task, 'method-sft__data-1k__seed-1/config.json'), '{}\n');
    return repo;
  }
  const run = (repo: string, ...args: string[]) => execFileSync('bash', [path.join(repo, 'experiments/paper-table/results.sh'), ...args], { encoding: 'utf8' });

  it('archives finished runs only, without weights or progress lines, the same bytes every time; a fresh clone restores them as finished', () => {
    const repo = scratchRepo();
    try {
      expect(run(repo, 'save', 'arithmetic')).toContain('saved experiments/paper-table/results/arithmetic/method-skd__data-1k__seed-1.tar.gz');
      const archives = path.join(repo, 'experiments/paper-table/results/arithmetic');
      expect(fs.readdirSync(archives)).toEqual(['method-skd__data-1k__seed-1.tar.gz']);
      const archive = path.join(archives, 'method-skd__data-1k__seed-1.tar.gz');
      const bytes = fs.readFileSync(archive);
      expect(execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n').filter(Boolean).sort()).toEqual([
        'method-skd__data-1k__seed-1/',
        'method-skd__data-1k__seed-1/config.json',
        'method-skd__data-1k__seed-1/eval/',
        'method-skd__data-1k__seed-1/eval/test-step-000001.bootstrap.json',
        'method-skd__data-1k__seed-1/eval/test-step-000001.jsonl',
        'method-skd__data-1k__seed-1/metrics.jsonl',
        'method-skd__data-1k__seed-1/summary.json',
      ]);
      // Saving again writes nothing; archiving the same run anew gives the same bytes.
      expect(run(repo, 'save', 'arithmetic')).toBe('');
      fs.rmSync(archive);
      run(repo, 'save', 'arithmetic');
      expect(fs.readFileSync(archive).equals(bytes)).toBe(true);

      fs.rmSync(path.join(repo, 'runs'), { recursive: true });
      expect(run(repo, 'restore')).toContain('arithmetic: 1 finished runs restored');
      const restored = path.join(repo, 'runs/paper-table/arithmetic/method-skd__data-1k__seed-1');
      expect(fs.readFileSync(path.join(restored, 'summary.json'), 'utf8')).toContain('"exactMatch":0.4');
      expect(fs.readFileSync(path.join(restored, 'metrics.jsonl'), 'utf8')).toBe('{"type":"step","step":1}\n{"type":"eval","step":1}\n');
      expect(run(repo, 'restore', 'arithmetic')).toContain('arithmetic: 0 finished runs restored');
    } finally {
      fs.rmSync(repo, { recursive: true, force: true });
    }
  });

  it('a finished archive replaces a partial run of the same name; a bad action is refused', () => {
    const repo = scratchRepo();
    try {
      run(repo, 'save', 'arithmetic');
      const folder = path.join(repo, 'runs/paper-table/arithmetic/method-skd__data-1k__seed-1');
      fs.rmSync(path.join(folder, 'summary.json'));
      run(repo, 'restore', 'arithmetic');
      expect(fs.existsSync(path.join(folder, 'summary.json'))).toBe(true);
      expect(fs.existsSync(path.join(folder, 'model'))).toBe(false);
      expect(() => run(repo, 'push')).toThrow(/usage: bash experiments\/paper-table\/results.sh save\|restore/);
    } finally {
      fs.rmSync(repo, { recursive: true, force: true });
    }
  });
});
