// Layering is enforced here, not just documented (docs/architecture.md explains the layers).
//   core, backend, divergences : pure; import neither rxjs nor tsyringe
//   models, samplers, datasets, evaluators : components; no tsyringe (they never see the container)
//   config, trainer : the composition root; the only code that knows the container
//   experiment (runs, sweeps, the queue) and report (reports, charts, the dashboard) : over the root,
//     each without the other
//   cli : the commands, over everything
// `tools/lint-boundaries/check.cjs` proves a violation fails lint.
import nx from '@nx/eslint-plugin';

const pure = ['rxjs', 'rxjs/*', 'tsyringe'];
const noContainer = ['tsyringe'];

const lower = ['layer:core', 'layer:platform', 'layer:math', 'layer:component'];
const constraints = (extra) => [
  { sourceTag: 'layer:core', onlyDependOnLibsWithTags: ['layer:core'] },
  { sourceTag: 'layer:platform', onlyDependOnLibsWithTags: ['layer:core', 'layer:platform', ...extra] },
  { sourceTag: 'layer:math', onlyDependOnLibsWithTags: ['layer:core', 'layer:platform', 'layer:math', ...extra] },
  { sourceTag: 'layer:component', onlyDependOnLibsWithTags: [...lower, ...extra] },
  { sourceTag: 'layer:testing', onlyDependOnLibsWithTags: [...lower, 'layer:testing'] },
  { sourceTag: 'layer:root', onlyDependOnLibsWithTags: [...lower, 'layer:root', ...extra] },
  { sourceTag: 'layer:experiment', onlyDependOnLibsWithTags: [...lower, 'layer:root', 'layer:experiment', ...extra] },
  { sourceTag: 'layer:report', onlyDependOnLibsWithTags: [...lower, 'layer:root', 'layer:report', ...extra] },
  { sourceTag: 'layer:app', onlyDependOnLibsWithTags: [...lower, 'layer:root', 'layer:experiment', 'layer:report', 'layer:app', ...extra] },
  { sourceTag: 'purity:pure', bannedExternalImports: pure },
  { sourceTag: 'layer:component', bannedExternalImports: noContainer },
  { sourceTag: 'layer:testing', bannedExternalImports: noContainer },
  { sourceTag: 'layer:experiment', bannedExternalImports: noContainer },
  { sourceTag: 'layer:report', bannedExternalImports: noContainer },
];

const boundaries = (extra) => [
  'error',
  {
    enforceBuildableLibDependency: false,
    allow: [],
    depConstraints: constraints(extra),
  },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/*.cjs', '**/*.mjs', '**/*.js', 'tmp/**', 'runs/**'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': boundaries([]),
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
    },
  },
  {
    // Tests may use the shared fakes in @skd/testing; production code may not.
    files: ['**/*.spec.ts'],
    rules: { '@nx/enforce-module-boundaries': boundaries(['layer:testing']) },
  },
];
