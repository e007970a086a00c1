import type { Command } from 'commander';
import { parseRedisUrl, runWorker } from '@skd/experiment';
import { integerOption } from '../options';
import { EXIT_INTERRUPTED, type CommandContext } from '../context';

/** `skd worker`: trains runs of queued sweeps, each in its own process. */
export function workerCommand(program: Command, { io, signal, exit }: CommandContext): void {
  program
    .command('worker')
    .description("take runs of queued sweeps from Redis and train them here, each in its own process; the sweeps' folders must be shared storage")
    .requiredOption('--queue <url>', 'the Redis queue, redis://HOST:PORT[/DB]')
    .option('--concurrency <n>', "runs at once (each uses the machine's cores: 1 is usually fastest)", integerOption(1), 1)
    .option('--max-jobs <m>', 'take at most this many runs, then exit', integerOption(1))
    .option('--lock-duration <seconds>', 'how long a run stays with a worker that stopped answering before another worker takes it over', integerOption(2), 30)
    .action(async (options: { queue: string; concurrency: number; maxJobs?: number; lockDuration: number }) => {
      const target = parseRedisUrl(options.queue);
      // Ctrl-C or SIGTERM: every run finishes its step, checkpoints and goes back to the queue.
      exit.catchInterrupts();
      const result = await runWorker({
        target,
        concurrency: options.concurrency,
        ...(options.maxJobs !== undefined ? { maxJobs: options.maxJobs } : {}),
        lockSeconds: options.lockDuration,
        io,
        ...(signal ? { signal } : {}),
      });
      io.out(`worker: ${result.completed} runs completed, ${result.failed} failed${result.handedBack ? `, ${result.handedBack} handed back` : ''}`);
      if (result.fatal) throw result.fatal;
      if (signal?.aborted) exit.code = EXIT_INTERRUPTED;
    });
}
