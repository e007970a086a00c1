import type { Command } from 'commander';
import { SkdError } from '@skd/core';
import { enqueueSweep, followSweep, loadSweep, openQueue, parseRedisUrl, renderStatus, runSweep, sweepJobs, sweepStatus } from '@skd/experiment';
import { EXIT_INTERRUPTED, type CommandContext } from '../context';

/** `skd sweep`: a grid of runs here, or through a Redis queue for workers. */
export function sweepCommand(program: Command, { io, signal, exit }: CommandContext): void {
  program
    .command('sweep')
    .description('run a grid of configs one after another (a killed sweep continues where it stopped), or through a Redis queue on several machines')
    .argument(
      '<sweep>',
      'sweep file: { base, out, mode, grid: { "config.path": [values], "@axis": [{ name, set: { path: value } }] }, set: [] }; its relative paths (base, out, and paths in its values) resolve from its folder',
    )
    .option('--queue <url>', 'enqueue the runs in the Redis queue at redis://HOST:PORT[/DB] for `skd worker`s instead of running them here')
    .option('--no-wait', 'with --queue: enqueue and return, without following the runs')
    .option('--status', 'with --queue: print where every run of the sweep is (waiting, active with step and ETA, completed, failed with the error) and return')
    .option('--json', 'with --status: the same as JSON')
    .option(
      '--only <axis=values>',
      'run (or enqueue, or show) only the runs with these values of an axis, e.g. --only method=skd,on-policy --only data=100; repeatable',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(async (file: string, options: { queue?: string; wait: boolean; status?: boolean; json?: boolean; only: string[] }) => {
      if (!options.queue) {
        const misplaced = [options.status && '--status', !options.wait && '--no-wait', options.json && '--json'].filter(Boolean);
        if (misplaced.length) throw new SkdError(`${misplaced.join(' and ')} only apply to a queued sweep`, { hint: 'add --queue redis://HOST:PORT' });
        exit.catchInterrupts();
        const { done, failed, elsewhere, total } = await runSweep(file, io, signal, options.only);
        io.out(`sweep: ${done}/${total} runs done${failed ? `, ${failed} failed` : ''}${elsewhere ? `, ${elsewhere} running in other processes` : ''}`);
        if (signal?.aborted) exit.code = EXIT_INTERRUPTED;
        else if (failed) exit.code = 1;
        return;
      }
      if (options.json && !options.status) throw new SkdError('--json applies to --status', { hint: 'add --status' });
      const sweep = loadSweep(file, options.only);
      const target = parseRedisUrl(options.queue);
      const { queue, lastError } = await openQueue(target);
      try {
        if (options.status) {
          const runs = await sweepStatus(queue, sweepJobs(sweep));
          if (options.json) io.out(JSON.stringify({ sweep: sweep.file, queue: target.display, runs }));
          else renderStatus(runs).forEach((line) => io.out(line));
          return;
        }
        const jobs = await enqueueSweep(sweep, queue, io);
        if (!options.wait) return;
        exit.catchInterrupts();
        const { runs, interrupted } = await followSweep(queue, jobs, io, { ...(signal ? { signal } : {}), lastError });
        if (interrupted) {
          io.err(`stopped following; the runs go on in the queue (see them with: skd sweep ${file} --queue ${options.queue} --status)`);
          exit.code = EXIT_INTERRUPTED;
          return;
        }
        renderStatus(runs).forEach((line) => io.out(line));
        const done = runs.filter((r) => r.state === 'completed' || r.state === 'done earlier').length;
        const failed = runs.filter((r) => r.state === 'failed').length;
        io.out(`sweep: ${done}/${runs.length} runs done${failed ? `, ${failed} failed` : ''}`);
        if (failed) exit.code = 1;
      } finally {
        await queue.close();
      }
    });
}
