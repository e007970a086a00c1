import * as path from 'node:path';
import type { Command } from 'commander';
import { SkdError } from '@skd/core';
import { startDashboard } from '@skd/report';
import { integerOption, positiveNumberOption } from '../options';
import type { CommandContext } from '../context';

/** `skd dashboard`: a page on localhost with every run under a folder, live. */
export function dashboardCommand(program: Command, { io }: CommandContext): void {
  program
    .command('dashboard')
    .description('serve a page on localhost that shows every run under a folder with its charts, updating while the runs train, and the table of finished runs')
    .argument('<runs-dir>', "a folder of run folders (a sweep's out, runs/), searched three levels deep")
    .option('--port <n>', 'port to listen on (0: any free port)', integerOption(0), 6060)
    .option('--host <address>', 'address to bind; anything but 127.0.0.1 or localhost lets other machines read the runs folder', '127.0.0.1')
    .option('--refresh <seconds>', 'how often the page asks for changes', positiveNumberOption(), 2)
    .action(async (runsDir: string, options: { port: number; host: string; refresh: number }) => {
      if (options.port > 65535) throw new SkdError(`--port ${options.port}: expected at most 65535`);
      const dashboard = await startDashboard({
        root: runsDir,
        port: options.port,
        host: options.host,
        refreshSeconds: options.refresh,
        onChange: (state) => {
          const training = state.runs.filter((r) => r.state === 'training').length;
          const finished = state.runs.filter((r) => r.state === 'finished').length;
          io.err(`dashboard: ${state.runs.length} runs (${training} training, ${finished} finished)`);
        },
      });
      if (!['127.0.0.1', 'localhost', '::1'].includes(options.host))
        io.err(`warning: --host ${options.host}: every file under ${runsDir} can be read by whoever reaches this address`);
      io.out(`skd dashboard: ${dashboard.url} (serving ${path.resolve(runsDir)}; Ctrl-C stops)`);
      // Serves until the process is ended (Ctrl-C ends it at once: there is nothing to keep).
      await new Promise<never>(() => undefined);
    });
}
