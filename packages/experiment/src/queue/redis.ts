import { Redis, type RedisOptions } from 'ioredis';
import { SkdError } from '@skd/core';
import { connectionOptions, type RedisTarget } from './jobs';

/**
 * Fails at once, naming the URL, when nothing answers there: a typo'd host should not leave a
 * command waiting forever. (Once started, workers and followers ride out a Redis restart.)
 */
export async function untilReachable(target: RedisTarget, timeoutMs = 5000): Promise<void> {
  const client = new Redis({
    ...(connectionOptions(target) as RedisOptions),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let last: Error | undefined;
  client.on('error', (error: Error) => {
    last = error;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    const cause = last ?? (error as Error);
    throw new SkdError(`cannot reach Redis at ${target.display}: ${cause.message}`, {
      hint: 'start redis-server there (or check the host, port and password); the queue lives in Redis',
    });
  } finally {
    client.disconnect();
  }
}
