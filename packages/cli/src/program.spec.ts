import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { applyTemplate, main, type Io } from './program';

function capture(): Io & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), progress: () => undefined };
}

const smoke = path.resolve(__dirname, '../../../experiments/smoke.json');

describe('skd CLI', () => {
  it('checks the smoke config and reports every component', async () => {
    const io = capture();
    expect(await main(['check', smoke, '--set', 'backend=cpu'], io, false)).toBe(0);
    expect(io.lines.join('\n')).toMatch(/backend cpu[\s\S]*sampler +supervised[\s\S]*config ok/);
  });

  it('applies --set overrides before validating, and names the bad field', async () => {
    const io = capture();
    expect(await main(['check', smoke, '--set', 'divergence.kind=jsdd'], io, false)).toBe(2);
    expect(io.errors.join('\n')).toContain('divergence.kind: Unknown divergence kind "jsdd". Known kinds:');
  });

  it('reports a missing config file and bad JSON with the file name', async () => {
    const io = capture();
    expect(await main(['check', '/nonexistent/run.json'], io, false)).toBe(2);
    expect(io.errors[0]).toContain('/nonexistent/run.json');
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'skd-')), 'bad.json');
    fs.writeFileSync(bad, '{ "seed": 1,, }');
    expect(await main(['check', bad], io, false)).toBe(2);
    expect(io.errors[1]).toMatch(/bad\.json: not valid JSON/);
  });

  it('lists component kinds with each option\'s type, default and description', async () => {
    const io = capture();
    expect(await main(['kinds', 'divergence'], io, false)).toBe(0);
    const text = io.lines.join('\n');
    expect(text).toMatch(/jsd +generalised JSD/);
    expect(text).toMatch(/\n +beta +number \[0\.\.1\] +default 0\.5 /);
    const one = capture();
    expect(await main(['kinds', 'sampler', 'skd', '--json'], one, false)).toBe(0);
    const [sampler] = JSON.parse(one.lines.join(''));
    expect(sampler.kinds).toHaveLength(1);
    expect(sampler.kinds[0].options.find((o: { name: string }) => o.name === 'topK')).toEqual({
      name: 'topK', type: 'integer [1..]', required: false, default: 25, description: 'drafts inside the teacher\'s top-K are accepted',
    });
    const unknown = capture();
    expect(await main(['kinds', 'sampler', 'nope'], unknown, false)).toBe(2);
    expect(unknown.errors.join('')).toContain('unknown sampler kind "nope". Fix: use one of distillm');
  });
});

describe('applyTemplate (skd generate)', () => {
  it('writes the prompt into the dataset\'s template, and refuses a template that needs other fields', () => {
    expect(applyTemplate('{prompt}\n', '2+2')).toBe('2+2\n');
    expect(applyTemplate('Q: {prompt}\nA:', '$& {prompt}')).toBe('Q: $& {prompt}\nA:');
    expect(applyTemplate(undefined, 'as is')).toBe('as is');
    expect(() => applyTemplate('Q: {prompt} (level {level})', 'x')).toThrow('needs the record fields {level} besides {prompt}. Fix: pass --raw');
  });
});
