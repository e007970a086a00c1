import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOCK_FILE, LOCK_HEARTBEAT_MS, LOCK_STALE_MS, RunDirBusyError, lockRunDir, runDirHolder } from './run-lock';

describe('lockRunDir', () => {
  const folder = () => fs.mkdtempSync(path.join(os.tmpdir(), 'skd-lock-'));
  const holder = (dir: string, host: string, ageMs: number, pid = 4242) => {
    const file = path.join(dir, LOCK_FILE);
    fs.writeFileSync(file, JSON.stringify({ pid, host, started: '2026-01-01T00:00:00Z' }));
    const then = new Date(Date.now() - ageMs);
    fs.utimesSync(file, then, then);
  };

  it('refuses a folder held by a live process, naming it', () => {
    const dir = folder();
    const release = lockRunDir(dir, () => undefined);
    expect(() => lockRunDir(dir, () => undefined)).toThrow(RunDirBusyError);
    expect(() => lockRunDir(dir, () => undefined)).toThrow(`in use by process ${process.pid} on ${os.hostname()}`);
    release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it('runDirHolder names a live holder and sees no holder where lockRunDir would take over', () => {
    const dir = folder();
    expect(runDirHolder(dir)).toBeUndefined();
    const release = lockRunDir(dir, () => undefined);
    expect(runDirHolder(dir)).toMatch(new RegExp(`^process ${process.pid} on ${os.hostname()} \\(since `));
    release();
    expect(runDirHolder(dir)).toBeUndefined();
    holder(dir, 'node-7', LOCK_STALE_MS / 2);
    expect(runDirHolder(dir)).toBe('process 4242 on node-7 (since 2026-01-01T00:00:00Z)');
    holder(dir, 'node-7', LOCK_STALE_MS + 5000);
    expect(runDirHolder(dir)).toBeUndefined();
    const dead = spawnSync('true').pid;
    holder(dir, os.hostname(), 0, dead);
    expect(runDirHolder(dir)).toBeUndefined();
  });

  it('takes over a lock from another host only once it has gone unrefreshed for a minute', () => {
    const fresh = folder();
    holder(fresh, 'node-7', LOCK_STALE_MS / 2);
    expect(() => lockRunDir(fresh, () => undefined)).toThrow('in use by process 4242 on node-7');
    const silent = folder();
    holder(silent, 'node-7', LOCK_STALE_MS + 5000);
    const messages: string[] = [];
    const release = lockRunDir(silent, (m) => messages.push(m));
    expect(messages[0]).toMatch(/locked by process 4242 on node-7, silent for \d+ s; taking it over/);
    expect(JSON.parse(fs.readFileSync(path.join(silent, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    release();
  });

  it('refreshes its lock while held, so other hosts see it alive', () => {
    jest.useFakeTimers({ doNotFake: ['Date'] });
    try {
      const dir = folder();
      const release = lockRunDir(dir, () => undefined);
      const file = path.join(dir, LOCK_FILE);
      const old = new Date(Date.now() - LOCK_STALE_MS);
      fs.utimesSync(file, old, old);
      jest.advanceTimersByTime(LOCK_HEARTBEAT_MS);
      expect(Date.now() - fs.statSync(file).mtimeMs).toBeLessThan(LOCK_HEARTBEAT_MS);
      release();
    } finally {
      jest.useRealTimers();
    }
  });
});
