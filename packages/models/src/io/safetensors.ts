import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { FormatError } from '@skd/core';
import { writeFileAtomic, writeStreamAtomic } from './atomic';

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping names to
 * { dtype, shape, data_offsets } (offsets into the data block that follows), then the data.
 */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64';

export interface NamedArray {
  readonly shape: readonly number[];
  /** Float data reads as Float32Array (F16/BF16/F64 converted); integer data as Int32Array. */
  readonly data: Float32Array | Int32Array;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I32: 4, I64: 8 };
const MAX_HEADER = 100 * 1024 * 1024;

/** Serialises arrays (F32 for Float32Array, I32 for Int32Array) with optional string metadata. */
export function encodeSafetensors(arrays: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header['__metadata__'] = metadata;
  let offset = 0;
  const names = [...arrays.keys()].sort();
  for (const name of names) {
    const array = arrays.get(name) as NamedArray;
    const count = array.shape.reduce((a, b) => a * b, 1);
    if (count !== array.data.length) throw new FormatError(name, `shape [${array.shape.join(', ')}] holds ${count} values, data has ${array.data.length}`);
    const bytes = array.data.byteLength;
    header[name] = { dtype: array.data instanceof Float32Array ? 'F32' : 'I32', shape: array.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // align the data block to 8 bytes
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const data = (arrays.get(name) as NamedArray).data;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** One tensor to stream into a safetensors file: its shape and dtype up front, its data when its turn comes. */
export interface StreamedArray {
  readonly name: string;
  readonly shape: readonly number[];
  /** F32 and I32 from their typed arrays; BF16 and F16 as their 16-bit patterns in a Uint16Array. */
  readonly dtype: 'F32' | 'I32' | 'BF16' | 'F16';
  readonly data: () => Promise<Float32Array | Int32Array | Uint16Array> | Float32Array | Int32Array | Uint16Array;
}

/**
 * Writes a safetensors file one tensor at a time (the header is known from the shapes), so no
 * buffer of the whole file is ever held: a 2 GB checkpoint costs one tensor's memory. Atomic (a
 * temporary file, fsynced, then renamed); returns the SHA-256 of the bytes written, computed as they go.
 */
export async function writeSafetensorsStreaming(file: string, tensors: readonly StreamedArray[], metadata: Record<string, string> = {}): Promise<string> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header['__metadata__'] = metadata;
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let offset = 0;
  for (const t of sorted) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  const hash = createHash('sha256');
  await writeStreamAtomic(file, async (write) => {
    for (const chunk of [length, headerBytes]) {
      hash.update(chunk);
      write(chunk);
    }
    for (const t of sorted) {
      const data = await t.data();
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (data.length !== count || data.BYTES_PER_ELEMENT !== BYTES[t.dtype])
        throw new FormatError(
          t.name,
          `shape [${t.shape.join(', ')}] holds ${count} ${t.dtype} values, data has ${data.length} of ${data.BYTES_PER_ELEMENT} bytes`,
        );
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      hash.update(bytes);
      write(bytes);
    }
  });
  return hash.digest('hex');
}

/** SHA-256 of a file's bytes, hex: what checkpoints record of each file they contain. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes the arrays atomically; returns the SHA-256 of the bytes written, for the checkpoint that holds the file. */
export function writeSafetensors(file: string, arrays: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}): string {
  const bytes = encodeSafetensors(arrays, metadata);
  writeFileAtomic(file, bytes);
  return sha256(bytes);
}

export interface Safetensors {
  readonly arrays: Map<string, NamedArray>;
  readonly metadata: Record<string, string>;
}

/** One tensor of a safetensors file: where its bytes lie (from the start of the data block). */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly entries: Map<string, SafetensorsEntry>;
  readonly metadata: Record<string, string>;
  /** Byte offset of the data block in the file. */
  readonly dataStart: number;
}

/** The header length field of a file of `fileLength` bytes, checked; every problem is a FormatError naming `source`. */
export function safetensorsHeaderLength(first8: Uint8Array, fileLength: number, source: string): number {
  if (fileLength < 8 || first8.length < 8)
    throw new FormatError(source, `not a valid safetensors file: ${fileLength} bytes is too short for the 8-byte header length`);
  const headerLength = Number(new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > MAX_HEADER || 8 + headerLength > fileLength) {
    throw new FormatError(source, `not a valid safetensors file: header length ${headerLength} exceeds the file (${fileLength} bytes)`);
  }
  return headerLength;
}

/**
 * Parses and validates a header (the JSON after the length field) of a file of `fileLength` bytes:
 * supported dtypes, shapes, offsets inside the data block (a truncated file is caught here), sizes
 * that match shape and dtype, no two tensors overlapping. Reads no tensor data.
 */
export function parseSafetensorsHeader(json: Uint8Array, fileLength: number, source: string): SafetensorsHeader {
  const fail = (detail: string): never => {
    throw new FormatError(source, `not a valid safetensors file: ${detail}`);
  };
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(json).toString('utf8'));
  } catch (cause) {
    throw new FormatError(source, `not a valid safetensors file: header is not JSON (${(cause as Error).message})`, { cause });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + json.length;
  const dataLength = fileLength - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  const metadata = (header['__metadata__'] ?? {}) as Record<string, string>;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype?: string; shape?: unknown; data_offsets?: unknown };
    if (!dtype || !(dtype in BYTES)) fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(BYTES).join(', ')})`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const width = BYTES[dtype as SafetensorsDtype];
    if (end < begin || end > dataLength) fail(`tensor "${name}" spans bytes ${begin}..${end}, past the ${dataLength}-byte data block (truncated file?)`);
    if (end - begin !== count * width)
      fail(`tensor "${name}" has ${end - begin} bytes, but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${count * width}`);
    entries.set(name, { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  const spans = [...entries.values()].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const previous = spans[i - 1] as SafetensorsEntry;
    const next = spans[i] as SafetensorsEntry;
    if (next.begin < previous.end && previous.end > previous.begin) fail(`tensors "${previous.name}" and "${next.name}" overlap`);
  }
  return { entries, metadata, dataStart };
}

/** Parses and validates a safetensors buffer; every problem is a FormatError naming `source`. */
export function decodeSafetensors(bytes: Uint8Array, source: string): Safetensors {
  const headerLength = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.length, source);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + headerLength), bytes.length, source);
  const arrays = new Map<string, NamedArray>();
  for (const entry of header.entries.values()) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    arrays.set(entry.name, {
      shape: entry.shape,
      data: convert(bytes.subarray(header.dataStart + entry.begin, header.dataStart + entry.end), entry.dtype, count),
    });
  }
  return { arrays, metadata: header.metadata };
}

/** Bytes per element of each dtype. */
export function dtypeBytes(dtype: SafetensorsDtype): number {
  return BYTES[dtype];
}

/**
 * Converts `count` float elements of `raw` (F32, F16, BF16 or F64, little-endian) into `out`
 * starting at `at`. The conversion skd's loaders apply to every checkpoint dtype.
 */
export function floatsInto(raw: Uint8Array, dtype: SafetensorsDtype, count: number, out: Float32Array, at = 0): void {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'F32':
      if (raw.byteOffset % 4 === 0) out.set(new Float32Array(raw.buffer, raw.byteOffset, count), at);
      else for (let i = 0; i < count; i++) out[at + i] = view.getFloat32(i * 4, true);
      return;
    case 'BF16': {
      // bfloat16 is the top half of a float32: shift the bits into place (little-endian hosts read
      // the halves directly; DataView otherwise).
      const bits = new Uint32Array(out.buffer, out.byteOffset + at * 4, count);
      if (raw.byteOffset % 2 === 0 && LITTLE_ENDIAN) {
        const halves = new Uint16Array(raw.buffer, raw.byteOffset, count);
        for (let i = 0; i < count; i++) bits[i] = (halves[i] as number) << 16;
      } else for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return;
    }
    case 'F16':
      for (let i = 0; i < count; i++) out[at + i] = HALF[view.getUint16(i * 2, true)] as number;
      return;
    case 'F64':
      for (let i = 0; i < count; i++) out[at + i] = view.getFloat64(i * 8, true);
      return;
    default:
      throw new FormatError(dtype, `dtype ${dtype} is not a float type`);
  }
}

/**
 * Reads and validates a safetensors file. With `expectedSha256` (recorded when a checkpoint was written),
 * a file whose bytes changed since (a flipped bit, a truncation) is refused rather than loaded as another model.
 */
export function readSafetensors(file: string, expectedSha256?: string): Safetensors {
  const arrays = new Map<string, NamedArray>();
  const metadata = forEachSafetensor(file, expectedSha256, (name, array) => arrays.set(name, array));
  return { arrays, metadata };
}

/**
 * Reads a safetensors file one tensor at a time (verified first against `expectedSha256`, when
 * given): `visit` gets each tensor's array in file order and may let it go before the next is
 * read, so restoring a large checkpoint holds one tensor beyond what it restores into. Returns the
 * metadata.
 */
export function forEachSafetensor(file: string, expectedSha256: string | undefined, visit: (name: string, array: NamedArray) => void): Record<string, string> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (cause) {
    throw new FormatError(file, `cannot read: ${(cause as Error).message}`, { cause });
  }
  // Read piece by piece: the whole file is never one buffer (a 0.5B student's checkpoint with its
  // Adam moments is 6 GB, past what one typed array may hold).
  try {
    const size = fs.fstatSync(fd).size;
    if (expectedSha256 !== undefined) {
      const hash = createHash('sha256');
      const chunk = Buffer.allocUnsafe(1 << 24);
      for (let at = 0; at < size;) {
        const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
        if (n <= 0) break;
        hash.update(chunk.subarray(0, n));
        at += n;
      }
      const actual = hash.digest('hex');
      if (actual !== expectedSha256)
        throw new FormatError(
          file,
          `checksum mismatch: the file changed after it was written (sha256 ${actual.slice(0, 12)}..., recorded ${expectedSha256.slice(0, 12)}...)`,
        );
    }
    const first8 = Buffer.alloc(8);
    fs.readSync(fd, first8, 0, Math.min(8, size), 0);
    const headerLength = safetensorsHeaderLength(first8, size, file);
    const json = Buffer.alloc(headerLength);
    fs.readSync(fd, json, 0, headerLength, 8);
    const header = parseSafetensorsHeader(json, size, file);
    for (const entry of [...header.entries.values()].sort((a, b) => a.begin - b.begin)) {
      const bytes = Buffer.allocUnsafe(entry.end - entry.begin);
      for (let done = 0; done < bytes.length;) {
        const n = fs.readSync(fd, bytes, done, bytes.length - done, header.dataStart + entry.begin + done);
        if (n <= 0) throw new FormatError(file, `tensor "${entry.name}" ends early (was the file truncated while reading?)`);
        done += n;
      }
      visit(entry.name, {
        shape: entry.shape,
        data: convert(
          bytes,
          entry.dtype,
          entry.shape.reduce((a, b) => a * b, 1),
        ),
      });
    }
    return header.metadata;
  } finally {
    fs.closeSync(fd);
  }
}

function convert(raw: Uint8Array, dtype: SafetensorsDtype, count: number): Float32Array | Int32Array {
  const copy = raw.slice(); // aligned copy
  const view = new DataView(copy.buffer);
  switch (dtype) {
    case 'I32':
      return new Int32Array(copy.buffer, 0, count);
    case 'I64':
      return Int32Array.from({ length: count }, (_, i) => {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw new RangeError(`I64 value ${v} does not fit int32`);
        return Number(v);
      });
    default: {
      const out = new Float32Array(count);
      floatsInto(copy, dtype, count, out);
      return out;
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Every float16 bit pattern as a float (65536 entries, built once). */
const HALF = Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * Math.pow(2, -14) * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Infinity;
  return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
}
