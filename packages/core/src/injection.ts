declare const tokenValueType: unique symbol;

/**
 * A typed injection token: a symbol that remembers what it resolves to. The composition root's
 * container accepts it as a plain symbol; `resolve(container, TEACHER)` is typed `LanguageModel`.
 * Defined here (not imported from tsyringe) so contracts and components never depend on the container.
 */
export type InjectionToken<T> = symbol & { readonly [tokenValueType]?: T };

/** Creates (or finds, by the global symbol registry) the token named `skd:<name>`. */
export function injectionToken<T>(name: string): InjectionToken<T> {
  return Symbol.for(`skd:${name}`) as InjectionToken<T>;
}
