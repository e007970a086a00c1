import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '@skd/core';
import { configKeyPaths, keyElsewhere } from './keys';
import { planRun } from './build-run';

const packagesDir = path.resolve(__dirname, '../..');

/** Every `hint:` of the packages' sources, as the text of its string literals (`${...}` left blank). */
function hints(): { where: string; text: string }[] {
  const found: { where: string; text: string }[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.d.ts')) {
        const source = fs.readFileSync(full, 'utf8');
        for (const match of source.matchAll(/\bhint: ([^\n]*)\n([^\n]*)/g)) {
          // The literals on the property's line (quoted or template strings, maybe behind a ternary), or on the next when it wraps.
          const literalsOf = (text: string) =>
            [...text.matchAll(/'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|`((?:[^`\\]|\\.)*)`/g)].map((m) =>
              (m[1] ?? m[2] ?? m[3] ?? '').replace(/\$\{[^}]*\}/g, ' '),
            );
          const own = literalsOf(match[1] as string);
          const literals = own.length ? own : literalsOf(match[2] as string);
          const line = source.slice(0, match.index).split('\n').length;
          for (const text of literals) found.push({ where: `${path.relative(packagesDir, full)}:${line}`, text });
        }
      }
    }
  };
  for (const pkg of fs.readdirSync(packagesDir)) {
    const src = path.join(packagesDir, pkg, 'src');
    if (fs.existsSync(src)) walk(src);
  }
  return found;
}

describe('config keys named in hints', () => {
  const keys = configKeyPaths();
  const paths = new Set(keys.map((k) => k.path));
  const topLevel = new Set(keys.filter((k) => !k.path.includes('.')).map((k) => k.path));
  const leaves = new Set(keys.map((k) => k.path.split('.').pop() as string));

  it('indexes the run schema and every kind of every slot', () => {
    expect(paths).toContain('training.onTooLong');
    expect(paths).toContain('training.earlyStopping.patience');
    expect(paths).toContain('dataset.options.onInvalid');
    expect(paths).toContain('dataset.options.fields.extra');
    expect(paths).toContain('student.options.contextLength');
    expect(paths).toContain('evaluators.*.options.answerMarker');
    expect(keys.find((k) => k.path === 'sampler.options.topK')?.kinds).toEqual(expect.arrayContaining(['skd', 'mixed-skd']));
    expect(keys.find((k) => k.path === 'sampler.options.topK')?.kinds).not.toContain('on-policy');
  });

  it('finds the hints it checks (the walk itself works)', () => {
    const all = hints();
    expect(all.length).toBeGreaterThan(60);
    expect(all.some((h) => h.text.includes('training.onTooLong: "skip"'))).toBe(true);
  });

  it('every config key a hint names is written as a full path that exists', () => {
    const problems: string[] = [];
    for (const { where, text } of hints()) {
      for (const [token] of text.matchAll(/[A-Za-z_$][\w$]*(?:\.(?:[A-Za-z_$][\w$]*|\d+))*/g)) {
        const segments = token.split('.');
        if (segments.length > 1) {
          // A dotted word that starts at a top-level key is a config path (file names aside).
          if (!topLevel.has(segments[0] as string) || /\.(json|jsonl|gz|ts|js|mjs|cjs)$/.test(token)) continue;
          const normalised = token.replace(/\.\d+(?=\.|$)/g, '.*');
          if (!paths.has(normalised)) problems.push(`${where}: ${token} is not a config key path`);
        } else if (/^[a-z]+[A-Z]/.test(token) && leaves.has(token) && !topLevel.has(token) && !text.includes(`.${token}`)) {
          problems.push(
            `${where}: ${token} is named without its path (${keys
              .filter((k) => k.path.endsWith(`.${token}`))
              .map((k) => k.path)
              .join(' or ')})`,
          );
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('an unknown key that exists elsewhere in the config', () => {
  const elsewhere = keyElsewhere();

  it('says where it belongs', () => {
    expect(elsewhere('onTooLong', 'dataset.options.onTooLong')).toEqual(['training.onTooLong']);
    expect(elsewhere('onInvalid', 'training.onInvalid')).toEqual(['dataset.options.onInvalid (dataset kind jsonl)']);
    // a component option that only some kinds take names them
    expect(elsewhere('draftBlock', 'training.draftBlock')).toEqual(['sampler.options.draftBlock (sampler kind mixed-skd, skd)']);
    expect(elsewhere('noSuchKey', 'training.noSuchKey')).toEqual([]);
  });

  it('names the place in the config error, with the keys known where it was put', () => {
    const config = {
      student: { kind: 'gpt', options: {} },
      dataset: { kind: 'jsonl', options: { name: 'mine', files: { train: 'train.jsonl' }, onTooLong: 'skip' } },
      training: { steps: 2, onInvalid: 'skip' },
    };
    let error: unknown;
    try {
      planRun(config);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('dataset.options.onTooLong: unknown key; did you mean training.onTooLong? (known keys here: ');
    expect(message).toContain('training.onInvalid: unknown key; did you mean dataset.options.onInvalid (dataset kind jsonl)?');
  });
});
