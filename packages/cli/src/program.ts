import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import {
  applyOverrides,
  buildRun,
  configBaseDir,
  createRegistries,
  objectKeysAt,
  readConfigFile,
  type Registries,
} from '@skd/config';
import { SkdError, type ComponentKind } from '@skd/core';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const stdio: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Loads a config file with `--set` overrides applied; relative paths resolve from its folder. */
function loadConfig(file: string, sets: readonly string[]): { config: unknown; baseDir: string } {
  return { config: applyOverrides(readConfigFile(file), sets), baseDir: configBaseDir(file) };
}

function describeKinds(registries: Registries, only: ComponentKind | undefined, io: Io): void {
  const kinds = (Object.keys(registries) as ComponentKind[]).filter((k) => !only || k === only);
  for (const component of kinds) {
    io.out(`${component}:`);
    for (const entry of registries[component].list()) {
      const options = objectKeysAt(entry.options, []);
      io.out(`  ${entry.kind.padEnd(18)} ${entry.summary}${options.length ? ` [options: ${options.join(', ')}]` : ''}`);
    }
  }
}

export function buildProgram(io: Io = stdio): Command {
  const program = new Command('skd')
    .description('skd: knowledge distillation of language models (speculative KD and its baselines)')
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  program
    .command('check')
    .description('validate a run config, build every component it names, and report them (no training)')
    .argument('<config>', 'JSON run config; relative paths in it resolve from its folder')
    .option('--set <key=value>', 'override a config value (repeatable), e.g. --set sampler.options.topK=10', collect, [])
    .action(async (file: string, options: { set: string[] }) => {
      const { config, baseDir } = loadConfig(file, options.set);
      const run = await buildRun(config, { baseDir, source: file });
      try {
        io.out(run.backend.summary);
        io.out(`tokenizer  ${run.config.tokenizer.kind} (vocabulary ${run.tokenizer.vocabSize})`);
        io.out(`student    ${run.config.student.kind} (context ${run.student.contextLength})`);
        io.out(`teacher    ${run.config.teacher ? run.config.teacher.kind : '(none)'}`);
        io.out(`sampler    ${run.config.sampler.kind}`);
        io.out(`divergence ${run.divergence.name}`);
        io.out(`dataset    ${run.config.dataset.kind}: ${['train', 'eval', 'test'].map((s) => `${s} ${run.dataset.split(s as 'train').size ?? '?'}`).join(', ')}`);
        io.out(`evaluators ${run.evaluators.map((e) => e.name).join(', ') || '(none)'}`);
        io.out(`config ok: ${file} (${tf.memory().numTensors} tensors allocated)`);
      } finally {
        run.dispose();
      }
    });

  program
    .command('kinds')
    .description('list the registered component kinds with their options')
    .argument('[component]', 'only this component: tokenizer, model, sampler, divergence, dataset, evaluator')
    .action((component: ComponentKind | undefined) => {
      const registries = createRegistries();
      if (component && !(component in registries)) {
        throw new SkdError(`unknown component "${component}"`, { hint: `use one of ${Object.keys(registries).join(', ')}` });
      }
      describeKinds(registries, component, io);
    });

  return program;
}

/** Runs the CLI; SkdErrors print their message (what, value, fix) without a stack trace. */
export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof SkdError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    if ((error as { code?: string }).code?.startsWith('commander.')) return 1;
    io.err(String((error as Error).stack ?? error));
    return 1;
  }
}
