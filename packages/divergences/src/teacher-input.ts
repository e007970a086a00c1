import type * as tf from '@tensorflow/tfjs-core';
import { ShapeError, SkdError, type DivergenceInput } from '@skd/core';

/**
 * The teacher's side of a divergence's input, checked: its logits or cached log-probs, shaped like the
 * student's (B, T, V) logits. `hint` says how to give a teacher when there is none.
 */
export function teacherInput(name: string, input: DivergenceInput, hint: string): tf.Tensor3D {
  const { studentLogits } = input;
  if (studentLogits.rank !== 3) throw new ShapeError('student logits', '(B, T, V)', studentLogits.shape);
  const teacher = input.teacherLogits ?? input.teacherLogProbs;
  if (!teacher) throw new SkdError(`divergence "${name}" needs teacher logits or cached teacher log-probs`, { hint });
  if (teacher.shape.join() !== studentLogits.shape.join())
    throw new ShapeError('teacher logits', `[${studentLogits.shape.join(', ')}] (like the student logits)`, teacher.shape);
  return teacher;
}
