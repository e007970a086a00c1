/**
 * Verifiable instructions: each instruction example carries a check spec in its fields, and the
 * checker decides from the model's output alone whether the instruction was followed.
 */
export type CheckSpec =
  | { readonly type: 'exact'; readonly expected: string; readonly caseSensitive?: boolean }
  | { readonly type: 'number'; readonly expected: number }
  | { readonly type: 'list'; readonly expected: readonly string[] }
  | { readonly type: 'regex'; readonly pattern: string };

const clean = (text: string) => text.normalize('NFC').trim().replace(/\s+/g, ' ');

export function checkOutput(output: string, spec: CheckSpec): boolean {
  const text = clean(output);
  switch (spec.type) {
    case 'exact':
      return spec.caseSensitive === false ? text.toLowerCase() === clean(spec.expected).toLowerCase() : text === clean(spec.expected);
    case 'number': {
      const value = Number(text.replace(/,(?=\d{3}\b)/g, ''));
      return text !== '' && Number.isFinite(value) && Math.abs(value - spec.expected) < 1e-9;
    }
    case 'list': {
      const items = text.split(/\s*,\s*/).filter((s) => s !== '');
      return items.length === spec.expected.length && items.every((item, i) => item === spec.expected[i]);
    }
    case 'regex':
      return new RegExp(spec.pattern, 'u').test(text);
  }
}

export function isCheckSpec(value: unknown): value is CheckSpec {
  const spec = value as { type?: unknown } | null;
  return !!spec && typeof spec === 'object' && ['exact', 'number', 'list', 'regex'].includes(spec.type as string);
}
