#!/usr/bin/env node
// Proves the layering in eslint.config.mjs is enforced: each deliberate violation below is written
// into a real package, linted, and must fail with @nx/enforce-module-boundaries; a legal import in
// the same places must pass (so the check cannot pass vacuously). Files are removed afterwards.
const fs = require('node:fs');
const path = require('node:path');
const { ESLint } = require('eslint');

const root = path.resolve(__dirname, '../..');
const cases = [
  { pkg: 'divergences', code: "import { Subject } from 'rxjs';\nexport const s = new Subject<number>();\n", why: 'pure math imports rxjs' },
  { pkg: 'core', code: "import { container } from 'tsyringe';\nexport const c = container;\n", why: 'core imports tsyringe' },
  { pkg: 'samplers', code: "import { container } from 'tsyringe';\nexport const c = container;\n", why: 'a component imports the container' },
  { pkg: 'models', code: "import { buildRun } from '@skd/config';\nexport const b = buildRun;\n", why: 'a component imports the composition root' },
  { pkg: 'evaluators', code: "import { formatEvent } from '@skd/trainer';\nexport const f = formatEvent;\n", why: 'a component imports the trainer' },
  { pkg: 'divergences', code: "import { SupervisedSampler } from '@skd/samplers';\nexport const s = SupervisedSampler;\n", why: 'math imports a component' },
  { pkg: 'samplers', code: "import { useBackend } from '@skd/testing';\nexport const u = useBackend;\n", why: 'production code imports test fakes' },
  {
    pkg: 'trainer',
    code: "import { runSweep } from '@skd/experiment';\nexport const r = runSweep;\n",
    why: 'the composition root imports the experiment runner above it',
  },
  {
    pkg: 'report',
    code: "import { runSweep } from '@skd/experiment';\nexport const r = runSweep;\n",
    why: 'the report imports the experiment runner beside it',
  },
  {
    pkg: 'experiment',
    code: "import { writeReport } from '@skd/report';\nexport const w = writeReport;\n",
    why: 'the experiment runner imports the report beside it',
  },
  { pkg: 'experiment', code: "import { buildProgram } from '@skd/cli';\nexport const b = buildProgram;\n", why: 'a library imports the command line' },
];
const legal = [
  { pkg: 'samplers', code: "import { SkdError } from '@skd/core';\nexport const e = SkdError;\n" },
  { pkg: 'config', code: "import { container } from 'tsyringe';\nexport const c = container;\n" },
  { pkg: 'trainer', code: "import { Subject } from 'rxjs';\nexport const s = new Subject<number>();\n" },
  { pkg: 'experiment', code: "import { Trainer } from '@skd/trainer';\nexport const t = Trainer;\n" },
  { pkg: 'cli', code: "import { runSweep } from '@skd/experiment';\nimport { writeReport } from '@skd/report';\nexport const r = [runSweep, writeReport];\n" },
];

async function lint(pkg, code, index) {
  const file = path.join(root, 'packages', pkg, 'src', `__boundary_probe_${process.pid}_${index}.ts`);
  fs.writeFileSync(file, code);
  try {
    const eslint = new ESLint({ cwd: root });
    const [result] = await eslint.lintFiles([file]);
    return result.messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries' || m.fatal);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

(async () => {
  let failures = 0;
  let index = 0;
  for (const c of cases) {
    const messages = await lint(c.pkg, c.code, index++);
    const ok = messages.some((m) => m.ruleId === '@nx/enforce-module-boundaries');
    console.log(`${ok ? 'ok  ' : 'FAIL'} violation rejected (${c.why}): ${ok ? messages[0].message.split('\n')[0] : 'lint passed'}`);
    if (!ok) failures++;
  }
  for (const c of legal) {
    const messages = await lint(c.pkg, c.code, index++);
    const ok = messages.length === 0;
    console.log(`${ok ? 'ok  ' : 'FAIL'} legal import accepted in ${c.pkg}${ok ? '' : `: ${messages[0].message}`}`);
    if (!ok) failures++;
  }
  const passed = cases.length + legal.length - failures;
  console.log(`${passed} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
