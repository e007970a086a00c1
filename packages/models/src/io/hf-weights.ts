import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { FormatError } from '@skd/core';
import { HalfMatrix, type HalfDtype } from '@skd/ops';
import { dtypeBytes, floatsInto, parseSafetensorsHeader, safetensorsHeaderLength, type SafetensorsEntry } from './safetensors';

/** A tensor of a (possibly sharded) checkpoint, and the file it lies in. */
export interface StoredTensor extends SafetensorsEntry {
  readonly file: string;
  /** Absolute byte offset of the tensor's first byte in `file`. */
  readonly offset: number;
}

/** Dtypes a model's weights may be stored in; each is converted to float32 on load. */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/**
 * The tensors of a Hugging Face weights folder: `model.safetensors`, or the shards named by
 * `model.safetensors.index.json`. Every header is read and validated (dtypes, shapes, offsets inside
 * each file, no overlaps, every indexed tensor present where the index says) before any tensor data
 * is, so a broken checkpoint fails before memory is spent on it.
 */
export interface WeightIndex {
  readonly tensors: Map<string, StoredTensor>;
  /** The file that lists them: model.safetensors, or the shard index. */
  readonly source: string;
}

export function readWeightIndex(dir: string): WeightIndex {
  const single = path.join(dir, 'model.safetensors');
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(indexFile)) return { tensors: readSharded(dir, indexFile), source: indexFile };
  if (!fs.existsSync(single)) {
    const hint = fs.existsSync(path.join(dir, 'pytorch_model.bin'))
      ? 'this folder has PyTorch pickle weights only; save them as safetensors (model.save_pretrained(dir, safe_serialization=True))'
      : "save the model with safetensors (transformers' save_pretrained does by default)";
    throw new FormatError(dir, 'no weights: neither model.safetensors nor model.safetensors.index.json is here', { hint });
  }
  return { tensors: headerOf(single), source: single };
}

function readSharded(dir: string, indexFile: string): Map<string, StoredTensor> {
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (cause) {
    throw new FormatError(indexFile, `not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const map = index?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map))
    throw new FormatError(indexFile, 'weight_map: missing or not an object of tensor name → shard file');
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\'))
      throw new FormatError(indexFile, `weight_map.${name}: ${JSON.stringify(file)} is not a shard file name`);
    byFile.set(file, [...(byFile.get(file) ?? []), name]);
  }
  const tensors = new Map<string, StoredTensor>();
  for (const [file, names] of byFile) {
    const shard = path.join(dir, file);
    if (!fs.existsSync(shard))
      throw new FormatError(
        shard,
        `missing shard: weight_map names it for ${names.length} tensors (${names.slice(0, 2).join(', ')}${names.length > 2 ? ', ...' : ''})`,
      );
    const header = headerOf(shard);
    for (const name of names) {
      const entry = header.get(name);
      if (!entry) throw new FormatError(shard, `weight_map.${name} names this shard, which has no tensor "${name}"`);
      tensors.set(name, entry);
    }
  }
  return tensors;
}

function headerOf(file: string): Map<string, StoredTensor> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const first8 = Buffer.alloc(8);
    fs.readSync(fd, first8, 0, 8, 0);
    const length = safetensorsHeaderLength(first8, size, file);
    const json = Buffer.alloc(length);
    fs.readSync(fd, json, 0, length, 8);
    const header = parseSafetensorsHeader(json, size, file);
    const tensors = new Map<string, StoredTensor>();
    for (const entry of header.entries.values()) tensors.set(entry.name, { ...entry, file, offset: header.dataStart + entry.begin });
    return tensors;
  } finally {
    fs.closeSync(fd);
  }
}

/** Where a stored tensor goes in a parameter: rows of (out, in) stored tensors become columns when `transpose`. */
export interface WeightPiece {
  /** Name in the checkpoint. */
  readonly source: string;
  /** Shape the checkpoint must hold. */
  readonly shape: readonly number[];
  /** Stored (out, in) → parameter columns [column, column + out) of an (in, total) matrix. */
  readonly transpose: boolean;
  /** First column (transposed pieces) or first element (1-D pieces packed side by side). */
  readonly at: number;
}

/** A parameter assembled from one or more stored tensors. */
export interface WeightPlan {
  readonly shape: readonly number[];
  readonly pieces: readonly WeightPiece[];
}

const CHUNK_BYTES = 1 << 24;

/**
 * Reads every planned parameter from the stored tensors into float32 tf tensors, one at a time:
 * each stored tensor is read straight from its file (in 16 MB chunks where no transposition is
 * needed), converted, and placed; a parameter becomes a tensor as soon as it is complete. Peak
 * memory beyond the model is one parameter's host copy. Every stored tensor must be planned or
 * listed in `ignore`; every planned one must exist with its shape and a float dtype.
 */
/**
 * With `half`, matrices become HalfMatrix values, and those assembled from transposed pieces (a
 * decoder's projections) are kept (out, in), as stored: see DecoderInit.weights.
 */
export function loadPlannedWeights(
  index: WeightIndex,
  plans: ReadonlyMap<string, WeightPlan>,
  ignore: (name: string) => boolean = () => false,
  options: { readonly half?: HalfDtype } = {},
): Map<string, tf.Tensor | HalfMatrix> {
  const { tensors } = index;
  checkPlans(index, plans, ignore);
  const loaded = new Map<string, tf.Tensor | HalfMatrix>();
  const descriptors = new Map<string, number>();
  // Read and conversion buffers are reused across tensors: fresh memory costs its page faults,
  // which were half of a 0.5B checkpoint's load time.
  const scratch: Scratch = { raw: Buffer.alloc(0), dense: new Float32Array(0) };
  try {
    for (const [name, plan] of plans) {
      const size = plan.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(size);
      // A 16-bit model's matrices go straight to 16 bits (no float32 copy of the model exists at once),
      // and its projections keep their stored (out, in) layout: pieces stacked by rows, not transposed.
      const stacked = options.half !== undefined && plan.pieces.length > 0 && plan.pieces.every((piece) => piece.transpose);
      for (const piece of plan.pieces) {
        const stored = tensors.get(piece.source) as StoredTensor;
        const asStored = { ...piece, transpose: false, at: piece.at * (plan.shape[0] as number) };
        readPiece(stored, stacked ? asStored : piece, plan, values, descriptors, scratch);
      }
      const [rows, cols] = plan.shape as [number, number];
      loaded.set(
        name,
        options.half && plan.shape.length === 2
          ? HalfMatrix.fromFloat32(values, stacked ? [cols, rows] : [rows, cols], options.half)
          : tf.tensor(values, [...plan.shape], 'float32'),
      );
    }
    return loaded;
  } catch (error) {
    loaded.forEach((t) => (t instanceof HalfMatrix ? undefined : t.dispose()));
    throw error;
  } finally {
    descriptors.forEach((fd) => fs.closeSync(fd));
  }
}

/**
 * The 16-bit format a checkpoint's weight matrices are stored in: bfloat16 or float16 when every
 * matrix is stored so, else float32 (also for F32 and for mixed checkpoints).
 */
export function storedMatrixDtype(index: WeightIndex): 'float32' | HalfDtype {
  const matrices = [...index.tensors.values()].filter((t) => t.shape.length === 2);
  if (matrices.length && matrices.every((t) => t.dtype === 'BF16')) return 'bfloat16';
  if (matrices.length && matrices.every((t) => t.dtype === 'F16')) return 'float16';
  return 'float32';
}

function checkPlans(index: WeightIndex, plans: ReadonlyMap<string, WeightPlan>, ignore: (name: string) => boolean): void {
  const { tensors } = index;
  const used = new Set<string>();
  for (const plan of plans.values()) {
    for (const piece of plan.pieces) {
      const stored = tensors.get(piece.source);
      if (!stored)
        throw new FormatError(index.source, `tensor "${piece.source}" is missing (the config implies one of shape [${piece.shape.join(', ')}])`, {
          hint: 'check that config.json belongs to these weights',
        });
      if (!FLOAT_DTYPES.has(stored.dtype))
        throw new FormatError(stored.file, `tensor "${piece.source}" has dtype ${stored.dtype}; model weights must be F32, F16 or BF16`);
      if (stored.shape.join() !== piece.shape.join())
        throw new FormatError(stored.file, `tensor "${piece.source}" has shape [${stored.shape.join(', ')}], the config implies [${piece.shape.join(', ')}]`);
      used.add(piece.source);
    }
  }
  const extra = [...tensors.keys()].filter((name) => !used.has(name) && !ignore(name));
  if (extra.length) {
    const file = (tensors.get(extra[0] as string) as StoredTensor).file;
    throw new FormatError(
      file,
      `holds ${extra.length} tensors the config does not describe: ${extra.slice(0, 4).join(', ')}${extra.length > 4 ? ', ...' : ''}`,
      {
        hint: 'check that config.json belongs to these weights',
      },
    );
  }
}

interface Scratch {
  raw: Buffer;
  dense: Float32Array;
}

function readPiece(stored: StoredTensor, piece: WeightPiece, plan: WeightPlan, values: Float32Array, descriptors: Map<string, number>, scratch: Scratch): void {
  let fd = descriptors.get(stored.file);
  if (fd === undefined) {
    fd = fs.openSync(stored.file, 'r');
    descriptors.set(stored.file, fd);
  }
  const width = dtypeBytes(stored.dtype);
  const count = stored.shape.reduce((a, b) => a * b, 1);
  if (!piece.transpose) {
    // Straight into place, chunk by chunk.
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / width));
    if (scratch.raw.length < Math.min(count, perChunk) * width) scratch.raw = Buffer.allocUnsafe(Math.min(count, perChunk) * width);
    const buffer = scratch.raw;
    for (let done = 0; done < count; done += perChunk) {
      const n = Math.min(perChunk, count - done);
      readExactly(fd, buffer, n * width, stored.offset + done * width, stored);
      floatsInto(buffer.subarray(0, n * width), stored.dtype, n, values, piece.at + done);
    }
    return;
  }
  const [rows, cols] = stored.shape as [number, number];
  const total = plan.shape[1] as number;
  if (scratch.raw.length < count * width) scratch.raw = Buffer.allocUnsafe(count * width);
  if (scratch.dense.length < count) scratch.dense = new Float32Array(count);
  const buffer = scratch.raw.subarray(0, count * width);
  const dense = scratch.dense;
  readExactly(fd, buffer, count * width, stored.offset, stored);
  floatsInto(buffer, stored.dtype, count, dense);
  // Stored (rows, cols) → columns [at, at + rows) of a (cols, total) parameter, in cache-sized tiles.
  const TILE = 64;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let c = c0; c < c1; c++) {
        const base = c * total + piece.at;
        for (let r = r0; r < r1; r++) values[base + r] = dense[r * cols + c] as number;
      }
    }
  }
}

function readExactly(fd: number, buffer: Buffer, length: number, position: number, stored: StoredTensor): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, position + done);
    if (n <= 0)
      throw new FormatError(stored.file, `tensor "${stored.name}" ends early: read ${done} of ${length} bytes (was the file truncated while loading?)`);
    done += n;
  }
}
