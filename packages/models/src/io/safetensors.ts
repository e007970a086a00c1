import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { FormatError } from '@skd/core';
import { writeFileAtomic } from './atomic';

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

/** Parses and validates a safetensors buffer; every problem is a FormatError naming `source`. */
export function decodeSafetensors(bytes: Uint8Array, source: string): Safetensors {
  const fail = (detail: string): never => {
    throw new FormatError(source, `not a valid safetensors file: ${detail}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER || 8 + headerLength > bytes.length) fail(`header length ${headerLength} exceeds the file (${bytes.length} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8'));
  } catch (cause) {
    throw new FormatError(source, `not a valid safetensors file: header is not JSON (${(cause as Error).message})`, { cause });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const arrays = new Map<string, NamedArray>();
  const metadata = (header['__metadata__'] ?? {}) as Record<string, string>;
  const spans: [number, number, string][] = [];
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
    if (end - begin !== count * width) fail(`tensor "${name}" has ${end - begin} bytes, but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${count * width}`);
    spans.push([begin, end, name]);
    arrays.set(name, { shape: shape as number[], data: convert(bytes.subarray(dataStart + begin, dataStart + end), dtype as SafetensorsDtype, count) });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    const [prevBegin, prevEnd, prevName] = spans[i - 1] as [number, number, string];
    const [begin, , name] = spans[i] as [number, number, string];
    if (begin < prevEnd && prevEnd > prevBegin) fail(`tensors "${prevName}" and "${name}" overlap`);
  }
  return { arrays, metadata };
}

/**
 * Reads and validates a safetensors file. With `expectedSha256` (recorded when a checkpoint was written),
 * a file whose bytes changed since (a flipped bit, a truncation) is refused rather than loaded as another model.
 */
export function readSafetensors(file: string, expectedSha256?: string): Safetensors {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (cause) {
    throw new FormatError(file, `cannot read: ${(cause as Error).message}`, { cause });
  }
  if (expectedSha256 !== undefined) {
    const actual = sha256(bytes);
    if (actual !== expectedSha256) throw new FormatError(file, `checksum mismatch: the file changed after it was written (sha256 ${actual.slice(0, 12)}..., recorded ${expectedSha256.slice(0, 12)}...)`);
  }
  return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}

function convert(raw: Uint8Array, dtype: SafetensorsDtype, count: number): Float32Array | Int32Array {
  const copy = raw.slice(); // aligned copy
  const view = new DataView(copy.buffer);
  switch (dtype) {
    case 'F32':
      return new Float32Array(copy.buffer, 0, count);
    case 'I32':
      return new Int32Array(copy.buffer, 0, count);
    case 'F64':
      return Float32Array.from({ length: count }, (_, i) => view.getFloat64(i * 8, true));
    case 'I64':
      return Int32Array.from({ length: count }, (_, i) => {
        const v = view.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) throw new RangeError(`I64 value ${v} does not fit int32`);
        return Number(v);
      });
    case 'BF16':
      return Float32Array.from({ length: count }, (_, i) => {
        const f = new DataView(new ArrayBuffer(4));
        f.setUint16(0, view.getUint16(i * 2, true), false);
        return f.getFloat32(0, false);
      });
    case 'F16':
      return Float32Array.from({ length: count }, (_, i) => halfToFloat(view.getUint16(i * 2, true)));
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * Math.pow(2, -14) * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Infinity;
  return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
}
