import { Option, type Command } from 'commander';
import type { SplitName } from '@skd/core';
import { runEvaluation } from '@skd/experiment';
import { collect, integerOption } from '../options';
import type { CommandContext } from '../context';

/** `skd eval`: what a run ends with, for the config's student as built. */
export function evalCommand(program: Command, { io, signal, exit }: CommandContext): void {
  program
    .command('eval')
    .description(
      "what a run ends with, for the config's student as built: greedy generation on a split, the evaluators with 95% bootstrap intervals, validation loss, perplexity, teacher acceptance",
    )
    .argument('<config>', 'JSON run config (point student at a checkpoint to evaluate a trained model)')
    .option('--set <key=value>', 'override a config value (repeatable); relative paths in it resolve from the current directory', collect, [])
    .addOption(new Option('--split <split>', 'the split to evaluate').choices(['train', 'eval', 'test']).default('test'))
    .option('--limit <n>', 'evaluate at most n examples (default: training.testLimit for test, training.evalLimit for eval)', integerOption(1))
    .option('--out <dir>', 'also write predictions, bootstrap scores and summary.json there, as a run folder skd report reads')
    .option('--group <name>', 'the report group of --out (default: its folder name)')
    .option('--json', 'print one JSON object (metrics and intervals) instead of lines', false)
    .action(async (file: string, options: { set: string[]; split: SplitName; limit?: number; out?: string; group?: string; json: boolean }) => {
      exit.catchInterrupts();
      const evaluation = await runEvaluation({
        configFile: file,
        sets: options.set,
        split: options.split,
        io,
        ...(signal ? { signal } : {}),
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
        ...(options.out !== undefined ? { out: options.out } : {}),
        ...(options.group !== undefined ? { group: options.group } : {}),
      });
      const { metrics, intervals } = evaluation;
      if (options.json) io.out(JSON.stringify({ split: options.split, metrics, intervals }));
      else {
        io.out(`eval ${options.split}: ${evaluation.predictions.length} examples${options.out ? ` -> ${options.out}` : ''}`);
        for (const [name, value] of Object.entries(metrics)) {
          const range = intervals[name];
          io.out(
            `  ${name.padEnd(18)} ${Number.isInteger(value) ? value : value.toFixed(4)}${range ? `  95% interval [${range[0].toFixed(4)}, ${range[1].toFixed(4)}]` : ''}`,
          );
        }
      }
    });
}
