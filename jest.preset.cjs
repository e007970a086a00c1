// Shared Jest settings. Tests run against package sources (no build needed): every `@skd/<name>`
// import maps to `packages/<name>/src/index.ts`, so one tfjs-core instance serves all packages.
const path = require('node:path');

const workspaceRoot = __dirname;

/** @returns {import('jest').Config} */
function preset(projectDir, overrides = {}) {
  return {
    displayName: path.basename(projectDir),
    rootDir: projectDir,
    testEnvironment: 'node',
    testMatch: ['<rootDir>/src/**/*.spec.ts'],
    transform: {
      '^.+\\.ts$': [
        '@swc/jest',
        {
          jsc: {
            target: 'es2022',
            parser: { syntax: 'typescript', decorators: true },
            transform: { legacyDecorator: true, decoratorMetadata: false },
          },
          module: { type: 'commonjs' },
          sourceMaps: 'inline',
        },
      ],
    },
    moduleNameMapper: {
      '^@skd/([a-z-]+)$': `${workspaceRoot}/packages/$1/src/index.ts`,
    },
    testTimeout: 60_000,
    ...overrides,
  };
}

module.exports = { preset, workspaceRoot };
