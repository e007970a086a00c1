import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildProgram, main, type Io } from './program';
import { skd, tmp } from './testing/cli';

// What a new user tripped on: options whose values were never checked, relative paths resolved from
// the wrong folder, `skd check` on a sweep file, `skd report` on a folder that is not there.
const REPO = path.resolve(__dirname, '../../..');
const smoke = path.join(REPO, 'experiments/smoke.json');

function capture(): Io & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), progress: () => undefined };
}

/** A folder with a sweep file over the smoke config (one real run folder to report on, too). */
function lab(): { dir: string; sweep: string; runs: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-lab-'));
  const sweep = path.join(dir, 'sweep.json');
  fs.writeFileSync(sweep, JSON.stringify({ base: smoke, out: 'runs', mode: 'distill', grid: { seed: [1, 2] } }));
  // A finished run as the report reads it (summary.json, metrics.jsonl).
  const run = path.join(dir, 'finished/method-skd__seed-1');
  fs.mkdirSync(run, { recursive: true });
  fs.writeFileSync(
    path.join(run, 'summary.json'),
    JSON.stringify({ run: 'method-skd__seed-1', group: 'method-skd', seed: 1, finalMetrics: { exactMatch: 0.5, count: 10 }, meanAcceptanceRate: null }),
  );
  fs.writeFileSync(path.join(run, 'metrics.jsonl'), `${JSON.stringify({ type: 'eval', step: 1, split: 'test', metrics: { exactMatch: 0.5, count: 10 } })}\n`);
  return { dir, sweep, runs: path.join(dir, 'finished') };
}

/**
 * Every value-taking option of every command, with an out-of-domain value and the arguments that
 * reach its check; `free` options take any string (a path to create, a name, a host).
 */
function domains(l: ReturnType<typeof lab>): Record<string, { args: string[]; invalid: string } | 'free'> {
  return {
    'check --set': { args: ['check', smoke], invalid: 'no-equals-sign' },
    'train --set': { args: ['train', smoke], invalid: 'no-equals-sign' },
    'train --out': 'free',
    'distill --set': { args: ['distill', smoke], invalid: 'no-equals-sign' },
    'distill --out': 'free',
    'eval --set': { args: ['eval', smoke], invalid: 'no-equals-sign' },
    'eval --split': { args: ['eval', smoke], invalid: 'validation' },
    'eval --limit': { args: ['eval', smoke], invalid: '0' },
    'eval --out': 'free',
    'eval --group': 'free',
    'generate --prompt': 'free',
    'generate --set': { args: ['generate', smoke, '--prompt', 'x'], invalid: 'no-equals-sign' },
    'generate --max-new-tokens': { args: ['generate', smoke, '--prompt', 'x'], invalid: 'many' },
    'generate --temperature': { args: ['generate', smoke, '--prompt', 'x'], invalid: '-1' },
    'export --out': 'free',
    'export --base': 'free',
    'sweep --queue': { args: ['sweep', l.sweep], invalid: 'http://not-redis' },
    'sweep --only': { args: ['sweep', l.sweep], invalid: 'color=red' },
    'worker --queue': { args: ['worker'], invalid: 'http://not-redis' },
    'worker --concurrency': { args: ['worker', '--queue', 'redis://127.0.0.1:1'], invalid: '0' },
    'worker --max-jobs': { args: ['worker', '--queue', 'redis://127.0.0.1:1'], invalid: 'x' },
    'worker --lock-duration': { args: ['worker', '--queue', 'redis://127.0.0.1:1'], invalid: '1' },
    'report --out': 'free',
    'report --paired': { args: ['report', l.runs], invalid: 'method' },
    'report --baseline': { args: ['report', l.runs], invalid: '/no/such/checkpoint' },
    'report --metric': { args: ['report', l.runs, '--out', path.join(l.dir, 'report')], invalid: 'bleurt' },
    'report --format': { args: ['report', l.runs, '--out', path.join(l.dir, 'report')], invalid: 'svg,pdf' },
    'dashboard --port': { args: ['dashboard', l.dir], invalid: '70000x' },
    'dashboard --host': 'free',
    'dashboard --refresh': { args: ['dashboard', l.dir], invalid: '0' },
    'tokenizer --out': 'free',
    'tokenizer --fields': 'free',
    'tokenizer --vocab-size': { args: ['tokenizer', smoke, '--out', path.join(l.dir, 't.json')], invalid: '0' },
    'tokenizer --min-frequency': { args: ['tokenizer', smoke, '--out', path.join(l.dir, 't.json')], invalid: 'often' },
  };
}

describe('every option is checked against its domain', () => {
  const l = lab();
  const table = domains(l);
  const program = buildProgram(capture());
  const valued = program.commands.flatMap((command) => command.options.filter((o) => o.required || o.optional).map((o) => `${command.name()} ${o.long}`));

  it('knows every value-taking option of every command (a new option must say what it accepts)', () => {
    expect(valued.filter((key) => !(key in table))).toEqual([]);
    expect(Object.keys(table).filter((key) => !valued.includes(key))).toEqual([]);
  });

  it.each(Object.entries(table).filter(([, d]) => d !== 'free') as [string, { args: string[]; invalid: string }][])(
    '%s refuses an out-of-domain value: exit 2, naming the option or the value',
    async (key, domain) => {
      const io = capture();
      const option = key.split(' ')[1] as string;
      expect(await main([...domain.args, option, domain.invalid], io, false)).toBe(2);
      expect(io.errors.join('\n')).toMatch(new RegExp(`${option}|${domain.invalid.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    },
  );

  it('eval names the splits there are when given one that is not', async () => {
    const io = capture();
    expect(await main(['eval', smoke, '--split', 'validation'], io, false)).toBe(2);
    expect(io.errors.join('\n')).toContain("option '--split <split>' argument 'validation' is invalid. Allowed choices are train, eval, test.");
    expect(io.lines).toEqual([]);
  });
});

describe('relative paths resolve from where they are written', () => {
  // A divergence of the user's own, in their lab folder, far from the skd checkout.
  function labWithModule(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skd-my-lab-'));
    fs.mkdirSync(path.join(dir, 'methods'));
    fs.writeFileSync(
      path.join(dir, 'methods/blended.js'),
      [
        "const tf = require('@tensorflow/tfjs-core');",
        "const { defineComponent } = require('@skd/core');",
        "const { divergenceOptions, forwardKlEntry, reverseKlEntry } = require('@skd/divergences');",
        'module.exports = defineComponent({',
        "  component: 'divergence', kind: 'blended-kl', summary: 'half forward KL, half reverse KL',",
        '  options: forwardKlEntry.options,',
        '  create: (options, deps) => {',
        '    const forward = forwardKlEntry.create(divergenceOptions(options), deps);',
        '    const reverse = reverseKlEntry.create(divergenceOptions(options), deps);',
        "    return { name: 'blended-kl', needsTeacher: true, perToken: (input) => tf.tidy(() => tf.add(tf.mul(0.5, forward.perToken(input)), tf.mul(0.5, reverse.perToken(input)))) };",
        '  },',
        '});',
      ].join('\n'),
    );
    return dir;
  }

  it("a sweep file's grid values from the sweep file's folder; skd check validates every grid point, one line each", () => {
    const dir = labWithModule();
    fs.writeFileSync(
      path.join(dir, 'sweep.json'),
      JSON.stringify({
        base: smoke,
        out: 'runs',
        grid: {
          '@method': [
            { name: 'blended', set: { divergence: { kind: 'blended-kl', module: 'methods/blended.js' } } },
            { name: 'forward', set: { divergence: { kind: 'forward-kl' } } },
          ],
          seed: [1, 2],
        },
      }),
    );
    const checked = skd(['check', 'sweep.json'], dir);
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
    expect(checked.stdout.trim().split('\n')).toEqual([
      'ok    method-blended__seed-1',
      'ok    method-blended__seed-2',
      'ok    method-forward__seed-1',
      'ok    method-forward__seed-2',
      `sweep ok: sweep.json (4 runs, base ${smoke})`,
    ]);
    // A point that does not validate is named with its first problem, and the check fails.
    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ base: smoke, out: 'runs', grid: { 'sampler.options.topK': [5], seed: [1] } }));
    const bad = skd(['check', 'bad.json'], dir);
    expect(bad.status).toBe(2);
    expect(bad.stdout).toMatch(/^error sampler.options.topK-5__seed-1: .*sampler\.options\.topK: unknown key/m);
  });

  it("--set values from the current directory, saved in the run's config as absolute paths", () => {
    const dir = labWithModule();
    const result = skd(
      [
        'distill',
        smoke,
        '--out',
        'runs/a',
        '--set',
        'divergence={"kind":"blended-kl","module":"methods/blended.js"}',
        '--set',
        'training.steps=1',
        '--set',
        'backend=cpu',
      ],
      dir,
    );
    expect(result.stderr).not.toMatch(/error/);
    expect(result.status).toBe(0);
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'runs/a/config.json'), 'utf8'));
    expect(saved.divergence).toMatchObject({ kind: 'blended-kl', module: path.join(dir, 'methods/blended.js') });
    // A config file's own relative paths still resolve from its folder (smoke.json's baseDir).
    expect(saved.baseDir).toBe(path.dirname(smoke));
  });
});

describe('skd report on a folder that is not there', () => {
  it('says the folder does not exist (exit 2), not that it holds no runs', async () => {
    const io = capture();
    expect(await main(['report', '/no/such/folder', '--out', path.join(tmp(), 'r')], io, false)).toBe(2);
    expect(io.errors.join('\n')).toContain('/no/such/folder: no such folder');
  });
});
