import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WriteError } from '@skd/core';
import { writeFileAtomic } from './atomic';

// Writes go through a stand-in for fs.writeSync that each test can cut short or fail.
type WriteSync = (fd: number, buffer: Uint8Array, offset?: number, length?: number) => number;
let writeSync: WriteSync | undefined;
jest.mock('node:fs', () => {
  const actual = jest.requireActual<typeof fs>('node:fs');
  return { ...actual, writeSync: (...args: Parameters<WriteSync>) => (writeSync ?? (actual.writeSync as WriteSync))(...args) };
});
const realWrite = jest.requireActual<typeof fs>('node:fs').writeSync as WriteSync;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skd-atomic-'));
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

afterEach(() => (writeSync = undefined));

describe('writeFileAtomic', () => {
  it('loops on short writes: a write the kernel cuts short still lands whole', () => {
    const file = path.join(tmp(), 'data.bin');
    let calls = 0;
    // At most 1000 bytes per call, as a nearly full disk or a slow device may do.
    writeSync = (fd, buffer, offset = 0, length = buffer.byteLength - offset) => ((calls += 1), realWrite(fd, buffer, offset, Math.min(length, 1000)));
    const data = Uint8Array.from({ length: 25_000 }, (_, i) => i % 251);
    writeFileAtomic(file, data);
    expect(calls).toBe(25);
    expect(Buffer.compare(fs.readFileSync(file), Buffer.from(data))).toBe(0);
  });

  it('on a full disk: one WriteError naming the path and cause, the old file intact, no temporary left', () => {
    const dir = tmp();
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, 'previous');
    writeSync = () => {
      throw enospc();
    };
    expect(() => writeFileAtomic(file, 'next')).toThrow(WriteError);
    expect(() => writeFileAtomic(file, 'next')).toThrow(`cannot write ${file}: no space left on device (ENOSPC)`);
    expect(fs.readdirSync(dir)).toEqual(['state.json']);
    expect(fs.readFileSync(file, 'utf8')).toBe('previous');
  });

  it('a write that makes no progress is a failure, not a silent truncation', () => {
    const dir = tmp();
    writeSync = () => 0;
    expect(() => writeFileAtomic(path.join(dir, 'model.safetensors'), new Uint8Array(100))).toThrow(
      /cannot write .*model\.safetensors: no space left on device/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
