import type { Command } from 'commander';
import { buildRun } from '@skd/config';
import { Rng, SkdError, cutAtStopStrings, encodePrompt, generationStops } from '@skd/core';
import { generate } from '@skd/models';
import { collect, integerOption, loadConfig, positiveNumberOption } from '../options';
import type { CommandContext } from '../context';

/** A conversation rendered with the tokenizer's chat template, ending with the assistant's cue. */
function chatPrompt(
  tokenizer: { renderChat?: (m: readonly { role: string; content: string }[], o: { addGenerationPrompt: boolean }) => string },
  messages: readonly { role: string; content: string }[],
): string {
  if (!tokenizer.renderChat)
    throw new SkdError('the dataset\'s template is "chat", but the tokenizer has no chat template', {
      hint: 'pass --raw and give the whole prompt as the model should see it',
    });
  return tokenizer.renderChat(messages, { addGenerationPrompt: true });
}

/**
 * The prompt as the model saw prompts in training: the dataset's template (e.g. "{prompt}\n") with
 * `{prompt}` replaced. A template that needs other record fields cannot be filled from one prompt.
 */
export function applyTemplate(template: unknown, prompt: string): string {
  if (typeof template !== 'string') return prompt;
  const others = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).filter((name) => name !== 'prompt');
  if (others.length > 0) {
    throw new SkdError(
      `the dataset's template ${JSON.stringify(template)} needs the record fields ${others.map((n) => `{${n}}`).join(', ')} besides {prompt}`,
      {
        hint: 'pass --raw and give the whole prompt as the model should see it',
      },
    );
  }
  return template.replace(/\{prompt\}/g, () => prompt);
}

/** `skd generate`: the student's answer to one prompt, as training and evaluation prompt it. */
export function generateCommand(program: Command, { io }: CommandContext): void {
  program
    .command('generate')
    .description(
      "generate from the config's student for one prompt, written into the dataset's prompt template and cut at its stop strings as in training and evaluation (--raw: as given, uncut)",
    )
    .argument('<config>', 'JSON run config')
    .requiredOption('--prompt <text>', "the prompt (the {prompt} of the dataset's template)")
    .option('--raw', "feed the prompt as given, without the dataset's template", false)
    .option('--set <key=value>', 'override a config value (repeatable); relative paths in it resolve from the current directory', collect, [])
    .option('--max-new-tokens <n>', 'longest response', integerOption(1), 64)
    .option('--temperature <t>', 'sampling temperature (default: greedy)', positiveNumberOption())
    .action(async (file: string, options: { prompt: string; raw: boolean; set: string[]; maxNewTokens: number; temperature?: number }) => {
      const { config, baseDir } = loadConfig(file, options.set);
      const datasetOptions = (config as { dataset?: { options?: { template?: unknown; system?: unknown } } }).dataset?.options;
      const chat = !options.raw && datasetOptions?.template === 'chat';
      const run = await buildRun(config, { baseDir, source: file });
      try {
        const system = typeof datasetOptions?.system === 'string' ? [{ role: 'system', content: datasetOptions.system }] : [];
        const prompt = options.raw
          ? options.prompt
          : chat
            ? chatPrompt(run.tokenizer, [...system, { role: 'user', content: options.prompt }])
            : applyTemplate(datasetOptions?.template, options.prompt);
        // Cut before the dataset's first stop string, as training and evaluation cut (not with --raw).
        const stopStrings = options.raw ? undefined : run.dataset.split('test').stopStrings;
        const stop = generationStops(run.tokenizer, stopStrings);
        const { tokens } = await generate(run.student, [encodePrompt(run.tokenizer, prompt)], {
          maxNewTokens: options.maxNewTokens,
          eos: run.tokenizer.special.eos,
          ...(stop ? { stop } : {}),
          pad: run.tokenizer.special.pad,
          rng: Rng.create(run.config.seed).fork('generate'),
          ...(options.temperature !== undefined ? { temperature: options.temperature } : { greedy: true }),
        });
        const generated = tokens[0] ?? [];
        io.out(run.tokenizer.decode(cutAtStopStrings(run.tokenizer, generated, stopStrings) ?? generated));
      } finally {
        run.dispose();
      }
    });
}
