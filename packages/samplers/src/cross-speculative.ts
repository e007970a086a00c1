import * as tf from '@tensorflow/tfjs-core';
import { SkdError, alignByByteOffsets, endsGeneration, type LanguageModel, type Rng } from '@skd/core';
import { byteSpans, chooseToken, generate, type SamplingOptions, type TokenizerBridge } from '@skd/models';
import { accepts, type Acceptance } from './speculative';

export interface CrossSpeculativeOptions {
  /** Budget in the student's tokens. */
  readonly maxNewTokens: number;
  /** The student's ids besides its EOS that end a row. */
  readonly stop?: readonly number[];
  readonly draftBlock: number;
  /** The acceptance set at each verification round (0-based within the call). */
  readonly acceptanceAt: (round: number) => Acceptance;
  readonly acceptOn: 'raw' | 'warped';
  readonly replace: 'resample' | 'argmax';
  readonly studentSampling: SamplingOptions;
  readonly teacherSampling: SamplingOptions;
  readonly rng: Rng;
}

export interface CrossSpeculativeStats {
  /** Student drafts judged: those of accepted groups plus those of each round's first rejected group. */
  readonly judged: number;
  readonly accepted: number;
  /** Teacher tokens judged and accepted (a group is accepted when all its teacher tokens are). */
  readonly teacherJudged: number;
  readonly teacherAccepted: number;
  readonly corrections: number;
  readonly rowRounds: number;
  /** Student tokens in the responses. */
  readonly tokensGenerated: number;
  readonly teacherForwards: number;
  readonly studentForwards: number;
}

export interface CrossSpeculativeResult {
  /** Per row, the response in the student's tokens (ends with the student's EOS when it ended). */
  readonly tokens: number[][];
  readonly stats: CrossSpeculativeStats;
}

/** One row being generated: its response so far on both sides. */
interface Row {
  readonly studentPrompt: readonly number[];
  readonly teacherPrompt: readonly number[];
  /** The response's text so far, and its tokens on each side (each side's encoding of it, then the end token). */
  text: string;
  student: number[];
  teacher: number[];
  done: boolean;
}

/** A round's drafts of one row, on both sides, grouped where both tokenizations split at the same byte. */
interface Draft {
  readonly row: Row;
  readonly student: number[];
  readonly teacher: number[];
  /** Per group, its student drafts' and teacher tokens' positions (within `student` and `teacher`). */
  readonly groups: { readonly student: number[]; readonly teacher: number[] }[];
  /** The student drafted its EOS (or a stop id): the teacher judges its own EOS after the text. */
  readonly ended: boolean;
  /** The teacher's context is full after this draft: the row ends with this round. */
  readonly full?: boolean;
}

/**
 * Speculative KD across tokenizers. Each round, for every unfinished row:
 *  1. the student drafts up to `draftBlock` tokens after its sequence so far;
 *  2. the drafts' text (the drafted end token left out) is encoded by the teacher's tokenizer on its
 *     own, and the two token sequences are grouped by byte offsets: a group ends where both split at
 *     the same byte (see `alignByByteOffsets`); a drafted end token is a last group of its own, paired
 *     with the teacher's EOS;
 *  3. one teacher forward over its prompt, its tokens so far and the draft's tokens scores them; a
 *     group is inside the acceptance set when every teacher token in it is inside the set at its
 *     position (a student token that is part of a teacher token is judged with that token; a student
 *     token that is several teacher tokens is judged on all of them);
 *  4. the row keeps its groups up to the first outside the set, and at the byte where the kept groups
 *     end (a byte where both tokenizations agree) the teacher samples (or, with `replace: argmax`,
 *     takes its argmax) a replacement token, whose text is appended; a teacher EOS ends the row with
 *     the student's EOS;
 *  5. the row's text so far is encoded again by each side's tokenizer, so the next round drafts and
 *     verifies after the text as each tokenizer writes it (a teacher's digit followed by the student's
 *     next one becomes the student's token for the number, as in the data it was trained on).
 * Rows end at an end token, at `maxNewTokens` student tokens, or when a round adds no text.
 */
export async function crossTokenizerSpeculative(
  student: LanguageModel,
  teacher: LanguageModel,
  bridge: TokenizerBridge,
  prompts: readonly (readonly number[])[],
  options: CrossSpeculativeOptions,
): Promise<CrossSpeculativeResult> {
  if (options.draftBlock < 1) throw new SkdError(`draftBlock must be at least 1, got ${options.draftBlock}`);
  const studentSide = bridge.student;
  const teacherSide = bridge.teacher;
  const rows: Row[] = prompts.map((prompt) => ({
    studentPrompt: prompt,
    teacherPrompt: bridge.teacherPrompt(prompt),
    text: '',
    student: [],
    teacher: [],
    done: false,
  }));
  const tooLong = rows.findIndex((r) => r.teacherPrompt.length >= teacher.contextLength);
  if (tooLong >= 0) {
    throw new SkdError(
      `cross-tokenizer SKD: prompt ${tooLong} is ${rows[tooLong]?.teacherPrompt.length} of the teacher's tokens, leaving no room in its context ${teacher.contextLength}`,
      { hint: 'shorten the prompts' },
    );
  }
  const stats = { judged: 0, accepted: 0, teacherJudged: 0, teacherAccepted: 0, corrections: 0, rowRounds: 0, teacherForwards: 0, studentForwards: 0 };
  const ends = (id: number) => endsGeneration(id, studentSide.special.eos, options.stop);
  for (let round = 0; rows.some((r) => !r.done); round++) {
    const active = rows.filter((r) => !r.done);
    // Each row drafts up to the block or its own room, whichever is less: a row's drafts never depend on the others'.
    const rooms = active.map((r) =>
      Math.min(options.draftBlock, options.maxNewTokens - r.student.length, student.contextLength - r.studentPrompt.length - r.student.length),
    );
    const drafted = await generate(
      student,
      active.map((r) => [...r.studentPrompt, ...r.student]),
      {
        ...options.studentSampling,
        maxNewTokens: Math.max(1, ...rooms),
        eos: studentSide.special.eos,
        ...(options.stop ? { stop: options.stop } : {}),
        pad: studentSide.special.pad,
        rng: options.rng,
      },
    );
    stats.studentForwards += drafted.forwardPasses;
    const drafts = active.map((row, i) => {
      const draft = draftOf(row, (drafted.tokens[i] as number[]).slice(0, Math.max(1, rooms[i] as number)), bridge, ends);
      // What passes the teacher's context cannot be judged: the row keeps the groups that fit, and ends.
      return fitToContext(draft, teacher.contextLength - row.teacherPrompt.length - row.teacher.length);
    });
    const sequences = drafts.map((d) => [...d.row.teacherPrompt, ...d.row.teacher, ...d.teacher]);
    // The teacher's rows that judge each draft's tokens, and the one after them (for a replacement).
    const positions = drafts.map((d) => {
      const before = d.row.teacherPrompt.length + d.row.teacher.length;
      return Array.from({ length: d.teacher.length + 1 }, (_, j) => before + j - 1);
    });
    const logits = await teacherRows(teacher, sequences, positions, teacherSide.special.pad);
    stats.teacherForwards += 1;
    const acceptance = options.acceptanceAt(round);
    const warp = options.acceptOn === 'warped' ? options.teacherSampling : undefined;
    drafts.forEach((draft, i) => {
      const rowLogits = logits[i] as Float32Array[];
      stats.rowRounds += 1;
      // Teacher tokens inside the set, in order, up to the first outside.
      let inside = 0;
      while (inside < draft.teacher.length && accepts(rowLogits[inside] as Float32Array, draft.teacher[inside] as number, acceptance, warp)) inside++;
      let keptGroups = 0;
      for (const group of draft.groups) {
        if (group.teacher.some((j) => j >= inside)) break;
        keptGroups++;
      }
      const kept = draft.groups.slice(0, keptGroups);
      const keptStudent = kept.flatMap((g) => g.student).length;
      const keptTeacher = kept.flatMap((g) => g.teacher).length;
      const rejected = draft.groups[keptGroups];
      stats.teacherJudged += Math.min(draft.teacher.length, inside + 1);
      stats.teacherAccepted += inside;
      stats.accepted += keptStudent;
      stats.judged += keptStudent + (rejected ? rejected.student.length : 0);
      const { row } = draft;
      const before = row.text;
      const keptDrafts = draft.student.slice(0, keptStudent);
      let end: number | undefined = draft.ended && !rejected ? (draft.student[draft.student.length - 1] as number) : undefined;
      let added = studentSide.decode(draft.ended && !rejected ? keptDrafts.slice(0, -1) : keptDrafts);
      if (rejected) {
        // The teacher's token where the kept groups end: a byte both tokenizations agree on.
        stats.corrections += 1;
        const at = rowLogits[keptTeacher] as Float32Array;
        const token = options.replace === 'argmax' ? chooseToken(at, { greedy: true }, options.rng) : chooseToken(at, options.teacherSampling, options.rng);
        if (endsGeneration(token, teacherSide.special.eos, teacherSide.special.stop)) end = studentSide.special.eos;
        else added += teacherSide.decode([token]);
      }
      // Both sides hold the committed text as their tokenizers encode it: a replacement's text joins the
      // student's tokens around it as the student would write it, not as the teacher split it.
      row.text = before + added;
      row.student = [...studentSide.encode(row.text), ...(end !== undefined ? [end] : [])];
      row.teacher = [...teacherSide.encode(row.text), ...(end !== undefined ? [teacherSide.special.eos] : [])];
      // A round that added no text (a teacher token that decodes to nothing) would repeat itself.
      if (end !== undefined || draft.full || row.text === before) row.done = true;
      if (row.student.length >= options.maxNewTokens || row.studentPrompt.length + row.student.length >= student.contextLength) {
        row.student.splice(options.maxNewTokens);
        row.done = true;
      }
    });
  }
  const tokens = rows.map((r) => r.student);
  return { tokens, stats: { ...stats, tokensGenerated: tokens.reduce((n, t) => n + t.length, 0) } };
}

/** A row's drafts on both sides, grouped by byte offsets; a drafted end token pairs with the teacher's EOS. */
function draftOf(row: Row, drafted: readonly number[], bridge: TokenizerBridge, ends: (id: number) => boolean): Draft {
  const last = drafted[drafted.length - 1];
  const ended = last !== undefined && ends(last);
  const body = ended ? drafted.slice(0, -1) : [...drafted];
  const teacherBody = bridge.teacher.encode(bridge.student.decode(body));
  const aligned = alignByByteOffsets(byteSpans(bridge.student, body), byteSpans(bridge.teacher, teacherBody));
  const groups = aligned.student.map((s, g) => ({ student: s, teacher: aligned.teacher[g] as number[] }));
  if (ended) groups.push({ student: [body.length], teacher: [teacherBody.length] });
  return {
    row,
    student: [...drafted],
    teacher: ended ? [...teacherBody, bridge.teacher.special.eos] : teacherBody,
    groups,
    ended,
  };
}

/** The draft's groups that fit in `room` more teacher tokens (all of it when it fits), marked `full` when cut. */
function fitToContext(draft: Draft, room: number): Draft {
  if (draft.teacher.length < room) return draft;
  let [ns, nt, kept] = [0, 0, 0];
  for (const group of draft.groups) {
    if (nt + group.teacher.length >= room) break;
    ns += group.student.length;
    nt += group.teacher.length;
    kept += 1;
  }
  return {
    row: draft.row,
    student: draft.student.slice(0, ns),
    teacher: draft.teacher.slice(0, nt),
    groups: draft.groups.slice(0, kept),
    ended: false,
    full: true,
  };
}

/** One teacher forward over right-padded sequences; per row, the logit rows at `positions`. */
async function teacherRows(
  teacher: LanguageModel,
  sequences: readonly (readonly number[])[],
  positions: readonly (readonly number[])[],
  pad: number,
): Promise<Float32Array[][]> {
  const width = Math.max(...sequences.map((s) => s.length));
  const flat = sequences.flatMap((s) => [...s, ...new Array<number>(width - s.length).fill(pad)]);
  const mask = sequences.flatMap((s) => Array.from({ length: width }, (_, t) => (t < s.length ? 1 : 0)));
  const picked = tf.tidy(() => {
    const tokens = tf.tensor2d(flat, [sequences.length, width], 'int32');
    const logits = teacher.logits(tokens, { mask: tf.tensor2d(mask, [sequences.length, width], 'float32') });
    const V = logits.shape[2];
    const index = positions.flatMap((p, b) => p.map((t) => b * width + t));
    return tf.gather(tf.reshape(logits, [sequences.length * width, V]), tf.tensor1d(index, 'int32'));
  });
  const data = (await picked.data()) as Float32Array;
  const V = picked.shape[1] as number;
  picked.dispose();
  let at = 0;
  return positions.map((p) =>
    p.map(() => {
      const row = data.slice(at * V, (at + 1) * V);
      at += 1;
      return row;
    }),
  );
}
