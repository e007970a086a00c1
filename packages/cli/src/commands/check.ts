import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { applyOverrides, buildRun, configBaseDir, readConfigFile, resolveOverridePaths, validateRun } from '@skd/config';
import { ConfigError, SkdError } from '@skd/core';
import { checkRunFits, describeMemory, expectedRunMemory, loadSweep, type Io } from '@skd/experiment';
import { checkTrainingData } from '@skd/trainer';
import { DecoderModel, tokenizerBridge } from '@skd/models';
import { collect, loadConfig } from '../options';
import type { CommandContext } from '../context';

/** A sweep file rather than a run config: it names a base config and a grid. */
function isSweepFile(json: unknown): boolean {
  return json !== null && typeof json === 'object' && 'grid' in json && 'base' in json;
}

/**
 * `skd check` on a sweep file: every run the sweep would plan, checked as the sweep checks it
 * (schema, kinds, options, modules; nothing built), one line each. Any problem is bad input (exit 2).
 */
async function checkSweep(file: string, sets: readonly string[], io: Io): Promise<void> {
  const sweep = loadSweep(file);
  const extra = sets.map((s) => resolveOverridePaths(s, process.cwd()));
  const base = readConfigFile(sweep.base);
  const baseDir = configBaseDir(sweep.base, base);
  let failed = 0;
  for (const run of sweep.runs) {
    try {
      await validateRun(applyOverrides(base, [...run.sets, ...extra]), { baseDir, source: run.name });
      io.out(`ok    ${run.name}`);
    } catch (error) {
      if (!(error instanceof SkdError)) throw error;
      failed += 1;
      const first = error instanceof ConfigError && error.issues[0] ? `${error.issues[0].path}: ${error.issues[0].message}` : error.message;
      io.out(`error ${run.name}: ${first}`);
    }
  }
  if (failed > 0)
    throw new SkdError(`${failed} of ${sweep.runs.length} runs of ${file} do not validate`, {
      hint: 'fix the sweep file or its base config, then check again',
    });
  io.out(`sweep ok: ${file} (${sweep.runs.length} runs, base ${sweep.base})`);
}

/** `skd check`: a run config built and described, or every run of a sweep validated. */
export function checkCommand(program: Command, { io }: CommandContext): void {
  program
    .command('check')
    .description('validate a run config, build every component it names, and report them (no training); or validate every run of a sweep file, one line each')
    .argument('<config>', 'JSON run config or sweep file; relative paths in it resolve from its folder')
    .option(
      '--set <key=value>',
      'override a config value (repeatable), e.g. --set sampler.options.topK=10; relative paths in it resolve from the current directory',
      collect,
      [],
    )
    .action(async (file: string, options: { set: string[] }) => {
      if (isSweepFile(readConfigFile(file))) {
        await checkSweep(file, options.set, io);
        return;
      }
      const { config, baseDir } = loadConfig(file, options.set);
      const run = await buildRun(config, { baseDir, source: file });
      try {
        const data = await checkTrainingData(run.dataset, {
          tokenizer: run.tokenizer,
          contextLength: run.student.contextLength,
          onTooLong: run.config.training.onTooLong,
        });
        const memory = expectedRunMemory(run.config, run, data);
        io.out(run.backend.summary);
        io.out(`tokenizer  ${run.config.tokenizer.kind} (vocabulary ${run.tokenizer.vocabSize})`);
        if (run.teacherTokenizer) {
          const { student, teacher } = tokenizerBridge(run.tokenizer, run.teacherTokenizer).vocabularies();
          const shared = [...teacher.keys()].filter((text) => student.has(text)).length;
          io.out(
            `teacher tokenizer ${run.config.teacherTokenizer?.kind} (vocabulary ${run.teacherTokenizer.vocabSize}): distilled across tokenizers; ${shared} of its token texts are in the student's vocabulary`,
          );
        }
        const lora = run.student instanceof DecoderModel ? run.student.lora : undefined;
        const held = (model: unknown) => (model instanceof DecoderModel && model.dtype !== 'float32' ? `; weight matrices in ${model.dtype}` : '');
        const adapters = lora
          ? `; LoRA rank ${lora.config.rank} on ${lora.config.targets.join(', ')}: ${run.student.trainableVariables.reduce((n, v) => n + v.size, 0).toLocaleString('en-US')} of ${(run.student as DecoderModel).parameterCount.toLocaleString('en-US')} parameters train`
          : '';
        io.out(
          `student    ${run.config.student.kind} (context ${run.student.contextLength}, vocabulary ${run.student.vocabSize}${adapters}${held(run.student)})`,
        );
        io.out(
          `teacher    ${run.config.teacher ? `${run.config.teacher.kind} (context ${run.teacher?.contextLength}, vocabulary ${run.teacher?.vocabSize}${held(run.teacher)})` : '(none)'}`,
        );
        for (const note of run.notes) io.out(`note       ${note}`);
        io.out(`sampler    ${run.config.sampler.kind}`);
        io.out(`divergence ${run.divergence.name}`);
        io.out(
          `dataset    ${run.config.dataset.kind}: ${['train', 'eval', 'test'].map((s) => `${s} ${run.dataset.split(s as 'train').size ?? '?'}`).join(', ')}`,
        );
        io.out(`evaluators ${run.evaluators.map((e) => e.name).join(', ') || '(none)'}`);
        io.out(
          `data       ${data.examples} training examples${data.tooLong ? ` (${data.tooLong} too long, skipped)` : ''}, longest ${data.longestExample} tokens`,
        );
        if (memory) {
          io.out(`memory     ${describeMemory(memory)}`);
          checkRunFits(memory, run.backend.name);
        }
        io.out(`config ok: ${file} (${tf.memory().numTensors} tensors allocated)`);
      } finally {
        run.dispose();
      }
    });
}
