import { InvalidArgumentError } from 'commander';
import { applyOverrides, configBaseDir, readConfigFile, resolveOverridePaths } from '@skd/config';
import { FIGURE_FORMATS, type FigureFormat } from '@skd/report';

/** `svg,png` → ['svg', 'png'], each checked. */
export function figureFormats(value: string): FigureFormat[] {
  const formats = value.split(',').map((f) => f.trim());
  const unknown = formats.filter((f) => !(FIGURE_FORMATS as readonly string[]).includes(f));
  if (unknown.length > 0 || formats.length === 0)
    throw new InvalidArgumentError(`expected ${FIGURE_FORMATS.join(', ')} or both comma-separated, got "${value}"`);
  return [...new Set(formats)] as FigureFormat[];
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** A parser for an integer option of at least `min`; anything else is refused (exit 2) naming the option. */
export function integerOption(min: number): (value: string) => number {
  return (value) => {
    if (!/^[-+]?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
    const n = Number(value);
    if (n < min) throw new InvalidArgumentError(`expected an integer of at least ${min}, got ${n}`);
    return n;
  };
}

/** A parser for a finite number option above `exclusiveMin`; anything else is refused naming the option. */
export function positiveNumberOption(exclusiveMin = 0): (value: string) => number {
  return (value) => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
    if (n <= exclusiveMin) throw new InvalidArgumentError(`expected a number above ${exclusiveMin}, got ${n}`);
    return n;
  };
}

/** A config file with `--set` overrides applied; relative paths resolve from its folder, those in `--set` from the current directory. */
export function loadConfig(file: string, sets: readonly string[]): { config: unknown; baseDir: string } {
  // --set values were typed here: their relative paths mean files from the current directory.
  const config = applyOverrides(
    readConfigFile(file),
    sets.map((s) => resolveOverridePaths(s, process.cwd())),
  );
  return { config, baseDir: configBaseDir(file, config) };
}
