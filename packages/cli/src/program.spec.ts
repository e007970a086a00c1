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

  it("lists component kinds with each option's type, default and description", async () => {
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
      name: 'topK',
      type: 'integer [1..]',
      required: false,
      default: 25,
      description: "drafts inside the teacher's top-K are accepted",
    });
    const unknown = capture();
    expect(await main(['kinds', 'sampler', 'nope'], unknown, false)).toBe(2);
    expect(unknown.errors.join('')).toContain('unknown sampler kind "nope". Fix: use one of distillm');
  });

  it('refuses a numeric option that is not a number in range (exit 2, the option named), and runs nothing', async () => {
    for (const [args, expected] of [
      [['eval', smoke, '--limit', 'abc'], /option '--limit <n>' argument 'abc' is invalid\. expected an integer, got "abc"/],
      [['eval', smoke, '--limit', '-3'], /option '--limit <n>' argument '-3' is invalid\. expected an integer of at least 1, got -3/],
      [['eval', smoke, '--limit', '2.5'], /'--limit <n>' argument '2\.5' is invalid/],
      [['generate', smoke, '--prompt', 'x', '--temperature', '0'], /'--temperature <t>' argument '0' is invalid\. expected a number above 0/],
      [['generate', smoke, '--prompt', 'x', '--max-new-tokens', 'many'], /'--max-new-tokens <n>' argument 'many' is invalid/],
      [['tokenizer', smoke, '--out', 'x', '--min-frequency', '0'], /'--min-frequency <n>' argument '0' is invalid/],
    ] as const) {
      const io = capture();
      expect(await main([...args], io, false)).toBe(2);
      expect(io.errors.join('\n')).toMatch(expected);
      expect(io.lines).toEqual([]);
    }
  });

  it('prints its version, and help ends with 0', async () => {
    const io = capture();
    expect(await main(['--version'], io, false)).toBe(0);
    expect(io.lines).toEqual([JSON.parse(fs.readFileSync(path.resolve(__dirname, '../package.json'), 'utf8')).version]);
    expect(await main(['--help'], capture(), false)).toBe(0);
    expect(await main(['eval', '--bogus'], capture(), false)).toBe(2);
  });
});

describe('applyTemplate (skd generate)', () => {
  it("writes the prompt into the dataset's template, and refuses a template that needs other fields", () => {
    expect(applyTemplate('{prompt}\n', '2+2')).toBe('2+2\n');
    expect(applyTemplate('Q: {prompt}\nA:', '$& {prompt}')).toBe('Q: $& {prompt}\nA:');
    expect(applyTemplate(undefined, 'as is')).toBe('as is');
    expect(() => applyTemplate('Q: {prompt} (level {level})', 'x')).toThrow('needs the record fields {level} besides {prompt}. Fix: pass --raw');
  });
});
