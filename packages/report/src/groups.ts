/** Report group names: sweep values joined by "__", and the prefix of `--baseline` models. */

/** Group names of models added with `--baseline` start with this; paired tests compare every system with them. */
export const BASELINE_GROUP = 'baseline-';

/** A sweep group name's parts: "method-skd__data-1k" → [["method", "skd"], ["data", "1k"]]. */
export function groupAxes(group: string): [string, string][] {
  return group.split('__').map((part) => {
    const at = part.indexOf('-');
    return at < 0 ? [part, ''] : [part.slice(0, at), part.slice(at + 1)];
  });
}
