import type { ByteSpan } from './divergence';

/** Positions of each side's tokens, group by group: group g of one side covers the same bytes as group g of the other. */
export interface ByteAlignment {
  readonly student: number[][];
  readonly teacher: number[][];
}

/**
 * Walks both sides' byte spans, advancing the side whose current token ends first; a group closes
 * where both sides' tokens end at the same byte. Tokens left over on either side (the texts end
 * differently) form one last group.
 */
export function alignByByteOffsets(student: readonly ByteSpan[], teacher: readonly ByteSpan[]): ByteAlignment {
  const groups: ByteAlignment = { student: [], teacher: [] };
  let [s, t, sStart, tStart] = [0, 0, 0, 0];
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  while (s < student.length && t < teacher.length) {
    const sEnd = (student[s] as ByteSpan)[1];
    const tEnd = (teacher[t] as ByteSpan)[1];
    if (sEnd < tEnd) s++;
    else if (sEnd > tEnd) t++;
    else {
      s++;
      t++;
      groups.student.push(range(sStart, s));
      groups.teacher.push(range(tStart, t));
      [sStart, tStart] = [s, t];
    }
  }
  if (s < student.length || t < teacher.length) {
    groups.student.push(range(sStart, student.length));
    groups.teacher.push(range(tStart, teacher.length));
  }
  return groups;
}
