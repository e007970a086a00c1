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

  it('lists component kinds with their options', async () => {
    const io = capture();
    expect(await main(['kinds', 'divergence'], io, false)).toBe(0);
    expect(io.lines.join('\n')).toMatch(/jsd +generalised JSD.*\[options: temperature, scaleByTemperatureSquared, sparseTopK, beta\]/);
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
