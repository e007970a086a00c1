import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADDON_PATH, chooseThreadWaiting } from './addon';

// The package as built (nx builds before it tests), loaded in a process of its own.
const BUILT = path.join(__dirname, '..', 'dist', 'addon.js');

/** libgomp's own account of its settings (OMP_DISPLAY_ENV), from a process that loads the addon with `env`. */
function libgompSettings(env: Record<string, string>): string {
  const script = `require(${JSON.stringify(BUILT)}).loadAddon();`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', OMP_DISPLAY_ENV: 'VERBOSE', ...env } });
  return run.stderr;
}

describe("how the kernels' threads wait", () => {
  it('waits passively unless the user chose OMP_WAIT_POLICY or GOMP_SPINCOUNT', () => {
    const env: Record<string, string | undefined> = {};
    expect(chooseThreadWaiting(env)).toBe('OMP_WAIT_POLICY=PASSIVE');
    expect(env['OMP_WAIT_POLICY']).toBe('PASSIVE');
    const active: Record<string, string | undefined> = { OMP_WAIT_POLICY: 'ACTIVE' };
    expect(chooseThreadWaiting(active)).toBe('OMP_WAIT_POLICY=ACTIVE');
    expect(active['OMP_WAIT_POLICY']).toBe('ACTIVE');
    const spin: Record<string, string | undefined> = { GOMP_SPINCOUNT: '300000' };
    expect(chooseThreadWaiting(spin)).toBe('GOMP_SPINCOUNT=300000');
    expect(spin['OMP_WAIT_POLICY']).toBeUndefined();
  });

  (fs.existsSync(ADDON_PATH) && fs.existsSync(BUILT) ? it : it.skip)('is what libgomp reads when the addon loads (it reads the environment once, then)', () => {
    // libgomp reports PASSIVE for an unset policy too; its spin count tells them apart (300000 unset, 0 passive).
    expect(libgompSettings({})).toMatch(/GOMP_SPINCOUNT = '0'/);
    expect(libgompSettings({ GOMP_SPINCOUNT: '300000' })).toMatch(/GOMP_SPINCOUNT = '300000'/);
    expect(libgompSettings({ OMP_WAIT_POLICY: 'ACTIVE' })).toMatch(/OMP_WAIT_POLICY = 'ACTIVE'/);
  });
});
