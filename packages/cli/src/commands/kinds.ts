import type { Command } from 'commander';
import { z } from 'zod';
import { createRegistries, type Registries } from '@skd/config';
import { SkdError, type ComponentKind } from '@skd/core';
import type { Io } from '@skd/experiment';
import type { CommandContext } from '../context';

interface OptionDoc {
  readonly name: string;
  readonly type: string;
  readonly default?: unknown;
  readonly required: boolean;
  readonly description?: string;
}

/** A component's options from its schema: name, type (with allowed values or range), default, description. */
export function optionDocs(schema: z.ZodType): OptionDoc[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<
      string,
      {
        type?: string | string[];
        enum?: unknown[];
        default?: unknown;
        description?: string;
        minimum?: number;
        maximum?: number;
        exclusiveMinimum?: number;
        anyOf?: { type?: string }[];
      }
    >;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, p]) => {
    const base = p.enum
      ? p.enum.map((v) => JSON.stringify(v)).join(' | ')
      : Array.isArray(p.type)
        ? p.type.join(' | ')
        : (p.type ?? p.anyOf?.map((a) => a.type ?? 'value').join(' | ') ?? 'value');
    const low = p.minimum ?? p.exclusiveMinimum;
    const high = p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER ? p.maximum : undefined;
    const range = low !== undefined || high !== undefined ? ` ${p.exclusiveMinimum !== undefined ? '(' : '['}${low ?? ''}..${high ?? ''}]` : '';
    return {
      name,
      type: `${base}${range}`,
      required: json.required?.includes(name) === true && p.default === undefined,
      ...(p.default !== undefined ? { default: p.default } : {}),
      ...(p.description ? { description: p.description } : {}),
    };
  });
}

function describeKinds(registries: Registries, only: ComponentKind | undefined, kind: string | undefined, json: boolean, io: Io): void {
  const components = (Object.keys(registries) as ComponentKind[]).filter((k) => !only || k === only);
  const listed = components.map((component) => ({
    component,
    kinds: registries[component]
      .list()
      .filter((e) => !kind || e.kind === kind)
      .map((entry) => ({ kind: entry.kind, summary: entry.summary, options: optionDocs(entry.options) })),
  }));
  if (kind && listed.every((c) => c.kinds.length === 0)) {
    throw new SkdError(`unknown ${only} kind "${kind}"`, {
      hint: `use one of ${components.flatMap((c) => registries[c].list().map((e) => e.kind)).join(', ')}`,
    });
  }
  if (json) {
    io.out(JSON.stringify(listed));
    return;
  }
  for (const { component, kinds } of listed) {
    io.out(`${component}:`);
    for (const entry of kinds) {
      io.out(`  ${entry.kind.padEnd(18)} ${entry.summary}`);
      for (const o of entry.options) {
        const fallback = o.required ? 'required' : o.default !== undefined ? `default ${JSON.stringify(o.default)}` : 'optional';
        io.out(`      ${o.name.padEnd(26)} ${o.type.padEnd(22)} ${fallback}${o.description ? `  ${o.description}` : ''}`);
      }
    }
  }
}

/** `skd kinds`: the registered component kinds with their options. */
export function kindsCommand(program: Command, { io }: CommandContext): void {
  program
    .command('kinds')
    .description('list the registered component kinds with their options: type, default and description')
    .argument('[component]', 'only this component: tokenizer, model, sampler, divergence, dataset, evaluator')
    .argument('[kind]', 'only this kind of the component, e.g. skd')
    .option('--json', 'print one JSON document', false)
    .action((component: ComponentKind | undefined, kind: string | undefined, options: { json: boolean }) => {
      const registries = createRegistries();
      if (component && !(component in registries)) {
        throw new SkdError(`unknown component "${component}"`, { hint: `use one of ${Object.keys(registries).join(', ')}` });
      }
      describeKinds(registries, component, kind, options.json, io);
    });
}
