import type * as Jinja from '@huggingface/jinja' with { 'resolution-mode': 'import' };
import { SkdError, type ChatMessage } from '@skd/core';

// @huggingface/jinja ships a CommonJS build (its "require" export) but declares its types as an ES
// module only: the types come from an import-mode type import, the code from require.
const { Template } = require('@huggingface/jinja') as typeof Jinja;

/**
 * A Jinja chat template (tokenizer_config.json's `chat_template`) rendered as transformers'
 * `apply_chat_template(..., tokenize=False)` renders it: with trim_blocks and lstrip_blocks, the
 * special tokens by name (bos_token, eos_token, ...), and raise_exception for templates that refuse
 * a conversation. Compiled once.
 */
export class ChatTemplate {
  private readonly template: InstanceType<typeof Jinja.Template>;

  constructor(
    readonly source: string,
    private readonly specialNames: Readonly<Record<string, string>>,
  ) {
    try {
      this.template = new Template(source);
    } catch (cause) {
      throw new SkdError(`the chat template does not parse: ${(cause as Error).message}`, { cause });
    }
  }

  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return this.template.render({ ...this.specialNames, messages: messages.map((m) => ({ ...m })), add_generation_prompt: addGenerationPrompt });
    } catch (cause) {
      throw new SkdError(`the chat template refused the conversation: ${(cause as Error).message}`, {
        cause,
        hint: "check the roles and their order against what the model's template accepts",
      });
    }
  }
}
