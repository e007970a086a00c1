import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, SkdError, WriteError } from '@skd/core';

/** Writes all of `bytes` to `fd`: `fs.writeSync` may write fewer bytes than asked (a nearly full disk, a pipe). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.byteLength) {
    const written = fs.writeSync(fd, bytes, at, bytes.byteLength - at);
    if (written <= 0) throw Object.assign(new Error(`wrote ${at} of ${bytes.byteLength} bytes`), { code: 'ENOSPC' });
    at += written;
  }
}

/** Makes a rename inside `dir` durable. Some file systems cannot fsync a folder; that is not an error. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw error;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes a file atomically: a temporary file in the same folder, every byte written and fsynced, then
 * renamed over the target and the folder fsynced. Either the whole new content is in place or the old
 * file is untouched; on failure the temporary is removed and a WriteError names the path and cause.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    if (error instanceof WriteError) throw error;
    throw new WriteError(file, error);
  }
}

/**
 * Writes a file atomically from pieces produced one at a time: `fill` calls `write` for each; then
 * the temporary file is fsynced and renamed over `file`. On failure nothing is left behind.
 */
export async function writeStreamAtomic(file: string, fill: (write: (bytes: Uint8Array) => void) => Promise<void>): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    const fd = fs.openSync(tmp, 'w');
    try {
      await fill((bytes) => writeAll(fd, bytes));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    if (error instanceof SkdError) throw error;
    throw new WriteError(file, error);
  }
}

/** Leftovers of interrupted folder writes beside `target` (`<name>.partial-*`). */
export function partialFolders(parent: string): string[] {
  if (!fs.existsSync(parent)) return [];
  return fs
    .readdirSync(parent)
    .filter((name) => /\.partial-\d+/.test(name))
    .map((name) => path.join(parent, name));
}

/**
 * Writes a folder atomically: `fill` writes into `<target>.partial-<pid>-<time>`, which is then renamed
 * to `target` (replacing an existing one only with `replace`). On failure the partial folder is removed
 * and the error names the target; an existing `target` is untouched.
 */
export async function writeFolderAtomic(
  target: string,
  fill: (dir: string) => Promise<void> | void,
  options: { readonly replace?: boolean } = {},
): Promise<void> {
  const tmp = `${target}.partial-${process.pid}-${Date.now()}`;
  try {
    fs.mkdirSync(tmp, { recursive: true });
    await fill(tmp);
    if (fs.existsSync(target) && options.replace) {
      const old = `${target}.old-${process.pid}-${Date.now()}`;
      fs.renameSync(target, old);
      fs.renameSync(tmp, target);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, target);
    }
    fsyncDir(path.dirname(target));
  } catch (error) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (error instanceof SkdError) throw error;
    throw new WriteError(target, error);
  }
}

/** Reads a JSON file; a missing, unreadable or malformed file is a FormatError naming the path and `what` it should be. */
export function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new FormatError(file, `cannot read ${what}: ${(cause as Error).message}`, { cause });
  }
}
