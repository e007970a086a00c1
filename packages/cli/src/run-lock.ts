import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SkdError, WriteError } from '@skd/core';
import { writeAll } from '@skd/models';

/** Who holds a run folder. */
interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly started: string;
}

export const LOCK_FILE = 'run.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof holder.pid === 'number' && typeof holder.host === 'string' ? { pid: holder.pid, host: holder.host, started: String(holder.started) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes a run folder for this process: `run.lock` is created exclusively (O_EXCL), holding the pid,
 * host and start time, so two processes can never both train into one folder, fresh or `--resume`.
 * A lock left by a dead process on this host is taken over with a message; one held by a live process,
 * or by another host (whose processes cannot be checked), is refused naming it. Released by the
 * returned function, and when the process exits.
 */
export function lockRunDir(runDir: string, onTakeover: (message: string) => void): () => void {
  const file = path.join(runDir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  try {
    fs.mkdirSync(runDir, { recursive: true });
  } catch (error) {
    throw new WriteError(runDir, error);
  }
  for (let attempt = 0; ; attempt += 1) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'wx');
      writeAll(fd, Buffer.from(`${JSON.stringify(me)}\n`));
      break;
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') {
        if (fd !== undefined) fs.rmSync(file, { force: true });
        throw new WriteError(file, error);
      }
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    const modified = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
    if (modified === undefined && attempt < 3) continue; // released meanwhile: try again
    const holder = readHolder(file);
    // Unreadable and fresh: another process is writing it this instant.
    const stale = holder ? holder.host === me.host && !alive(holder.pid) : Date.now() - (modified ?? 0) > 10_000;
    if (!stale || attempt >= 3) {
      const who = holder ? `process ${holder.pid} on ${holder.host} (since ${holder.started})` : 'another process';
      throw new SkdError(`run directory ${runDir} is in use by ${who}`, { hint: `wait for it to finish or stop it; if it is gone, delete ${file}` });
    }
    onTakeover(`run directory ${runDir} was locked by ${holder ? `process ${holder.pid}, which is no longer running` : 'an unreadable lock file'}; taking it over`);
    fs.rmSync(file, { force: true });
  }
  const release = () => {
    if (readHolder(file)?.pid === me.pid) fs.rmSync(file, { force: true });
    process.off('exit', release);
  };
  process.on('exit', release);
  return release;
}
