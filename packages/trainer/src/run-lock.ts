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

/** How often a holder refreshes its lock file's time, and how long a lock from another host may go unrefreshed before it counts as abandoned. */
export const LOCK_HEARTBEAT_MS = 10_000;
export const LOCK_STALE_MS = 60_000;

/** The run folder is held by another live process (a queue worker waits and tries again; a user is told who holds it). */
export class RunDirBusyError extends SkdError {}

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
    return typeof holder.pid === 'number' && typeof holder.host === 'string'
      ? { pid: holder.pid, host: holder.host, started: String(holder.started) }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a lock counts as abandoned: its holder is a dead process on this host, or it is another
 * host's (whose processes cannot be checked) and has gone unrefreshed for a minute; an unreadable
 * lock file, for 10 s (a fresh one is being written this instant).
 */
function abandoned(holder: LockHolder | undefined, ageMs: number): boolean {
  if (!holder) return ageMs > 10_000;
  return holder.host === os.hostname() ? !alive(holder.pid) : ageMs > LOCK_STALE_MS;
}

const describeHolder = (holder: LockHolder | undefined) => (holder ? `process ${holder.pid} on ${holder.host} (since ${holder.started})` : 'another process');

/**
 * Who holds a run folder now ("process 123 on host (since ...)"), or undefined when no live process
 * does (no lock, or an abandoned one that `lockRunDir` would take over). A look, not a claim: only
 * `lockRunDir` takes a folder, so a caller that finds it free must still expect `RunDirBusyError`.
 */
export function runDirHolder(runDir: string): string | undefined {
  const file = path.join(runDir, LOCK_FILE);
  const modified = fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
  if (modified === undefined) return undefined;
  const holder = readHolder(file);
  return abandoned(holder, Date.now() - modified) ? undefined : describeHolder(holder);
}

/**
 * Takes a run folder for this process: `run.lock` is created exclusively (O_EXCL), holding the pid,
 * host and start time, so two processes can never both train into one folder, fresh or `--resume`.
 * The holder refreshes the file's modification time every 10 s. A lock left by a dead process on this
 * host is taken over with a message, and so is one from another host (whose processes cannot be
 * checked) that has not been refreshed for a minute (its holder was killed, or its machine lost); one
 * held by a live process is refused naming it. Released by the returned function, and when the process exits.
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
    const age = Date.now() - (modified ?? 0);
    if (!abandoned(holder, age) || attempt >= 3) {
      throw new RunDirBusyError(`run directory ${runDir} is in use by ${describeHolder(holder)}`, {
        hint: `wait for it to finish or stop it; if it is gone, delete ${file}`,
      });
    }
    const gone = !holder
      ? 'an unreadable lock file'
      : holder.host === me.host
        ? `process ${holder.pid}, which is no longer running`
        : `process ${holder.pid} on ${holder.host}, silent for ${Math.round(age / 1000)} s`;
    onTakeover(`run directory ${runDir} was locked by ${gone}; taking it over`);
    fs.rmSync(file, { force: true });
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    try {
      if (readHolder(file)?.pid === me.pid) fs.utimesSync(file, now, now);
    } catch {
      // A missed beat is harmless: the next one (or the run's end) follows.
    }
  }, LOCK_HEARTBEAT_MS).unref();
  const release = () => {
    clearInterval(heartbeat);
    if (readHolder(file)?.pid === me.pid) fs.rmSync(file, { force: true });
    process.off('exit', release);
  };
  process.on('exit', release);
  return release;
}
