import type { Command } from 'commander';
import { runExperiment } from '@skd/experiment';
import { collect } from '../options';
import { EXIT_INTERRUPTED, type CommandContext } from '../context';

/** `skd train` and `skd distill`: one run into its folder, resumable. */
export function runCommands(program: Command, { io, signal, exit }: CommandContext): void {
  const runOptions = (command: Command) =>
    command
      .argument('<config>', 'JSON run config; relative paths in it resolve from its folder')
      .option(
        '--set <key=value>',
        'override a config value (repeatable), e.g. --set training.steps=50; relative paths in it resolve from the current directory',
        collect,
        [],
      )
      .option('--out <dir>', 'run directory (default runs/<config name>)')
      .option('--resume', 'continue the run in --out from its newest checkpoint', false);

  for (const mode of ['train', 'distill'] as const) {
    runOptions(
      program
        .command(mode)
        .description(
          mode === 'train'
            ? 'supervised fine-tuning (sampler "supervised", divergence "cross-entropy"): trains teachers and initial students'
            : "knowledge distillation of the config's student from its teacher (SKD or any sampler/divergence)",
        ),
    ).action(async (file: string, options: { set: string[]; out?: string; resume: boolean }) => {
      exit.catchInterrupts();
      const result = await runExperiment({
        configFile: file,
        sets: options.set,
        ...(options.out ? { out: options.out } : {}),
        resume: options.resume,
        mode,
        io,
        ...(signal ? { signal } : {}),
      });
      if (result.reason === 'cancelled') exit.code = EXIT_INTERRUPTED;
    });
  }
}
