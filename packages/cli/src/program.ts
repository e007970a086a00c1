import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { InterruptedError, SkdError, WriteError, describeSystemError } from '@skd/core';
import { terminalIo, type Io } from '@skd/experiment';
import { checkCommand } from './commands/check';
import { dashboardCommand } from './commands/dashboard';
import { evalCommand } from './commands/eval';
import { exportCommand } from './commands/export';
import { generateCommand } from './commands/generate';
import { kindsCommand } from './commands/kinds';
import { reportCommand } from './commands/report';
import { runCommands } from './commands/run';
import { sweepCommand } from './commands/sweep';
import { tokenizerCommand } from './commands/tokenizer';
import { workerCommand } from './commands/worker';
import { EXIT_INTERRUPTED, type CommandContext, type CommandState } from './context';

export type { Io } from '@skd/experiment';
export { EXIT_INTERRUPTED, type CommandState } from './context';
export { applyTemplate } from './commands/generate';
export { optionDocs } from './commands/kinds';
export { integerOption, positiveNumberOption } from './options';

/** The version of the installed @skd/cli (its package.json, one folder above dist/). */
export function cliVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/** The `skd` program: every command, in the order `skd --help` lists them. */
export function buildProgram(io: Io = terminalIo(), signal?: AbortSignal, exit: CommandState = { code: 0, catchInterrupts: () => undefined }): Command {
  const program = new Command('skd')
    .description('skd: knowledge distillation of language models (speculative KD and its baselines)')
    .version(cliVersion(), '-V, --version', 'print the version of skd')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  const context: CommandContext = { io, signal, exit };
  for (const register of [
    checkCommand,
    runCommands,
    evalCommand,
    generateCommand,
    exportCommand,
    sweepCommand,
    workerCommand,
    reportCommand,
    dashboardCommand,
    tokenizerCommand,
    kindsCommand,
  ])
    register(program, context);
  return program;
}

/**
 * Runs the CLI; SkdErrors print their message (what, value, fix) without a stack trace. During
 * training, evaluation, sweeps and workers the first SIGINT or SIGTERM lets the current step or batch
 * finish, keeps what is done (a checkpoint when training) and exits 130; a second one exits 130 at
 * once. Elsewhere Ctrl-C ends the process as it ends any program.
 */
export async function main(argv: readonly string[], io: Io = terminalIo(), signals = true): Promise<number> {
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    io.err('interrupted: finishing the current step and keeping what is done (Ctrl-C again to quit now)');
    controller.abort();
  };
  const catchInterrupts = () => {
    if (!signals) return;
    for (const name of ['SIGINT', 'SIGTERM'] as const) {
      process.off(name, onInterrupt);
      process.on(name, onInterrupt);
    }
  };
  const exit: CommandState = { code: 0, catchInterrupts };
  try {
    await buildProgram(io, controller.signal, exit).parseAsync([...argv], { from: 'user' });
    return exit.code;
  } catch (error) {
    if (error instanceof InterruptedError) {
      io.err(error.message);
      return EXIT_INTERRUPTED;
    }
    if (error instanceof WriteError) {
      io.err(`error: ${error.message}`);
      return 1;
    }
    if (error instanceof SkdError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    const { code, path: file, syscall } = error as { code?: unknown; path?: unknown; syscall?: unknown };
    // Commander has printed its message (and usage): help and --version end well, misuse is bad input.
    if (typeof code === 'string' && code.startsWith('commander.')) return (error as { exitCode?: number }).exitCode === 0 ? 0 : 2;
    // A file system error we did not wrap: one line with the path and the cause, not a stack.
    if (typeof code === 'string' && typeof file === 'string') {
      io.err(`error: ${typeof syscall === 'string' ? `${syscall} ` : ''}${file}: ${describeSystemError(error)}`);
      return 1;
    }
    io.err(String((error as Error).stack ?? error));
    return 1;
  } finally {
    if (signals) for (const name of ['SIGINT', 'SIGTERM'] as const) process.off(name, onInterrupt);
  }
}
