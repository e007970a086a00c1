import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type BackendName } from '@skd/backend';

/** Selects a backend for a test file (default `cpu`: deterministic and always present). */
export async function useBackend(name: BackendName = 'cpu'): Promise<void> {
  await selectBackend({ backend: name });
}

/**
 * Runs `fn` and returns how many tensors it left behind (tfjs `numTensors` after minus before).
 * Tests assert it is 0: long loops must keep memory flat.
 */
export async function tensorsLeakedBy(fn: () => unknown): Promise<number> {
  const before = tf.memory().numTensors;
  await fn();
  return tf.memory().numTensors - before;
}

/** Largest absolute elementwise difference of two equally shaped arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

export * from './reference';
export * from './toy';
