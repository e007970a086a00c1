import * as fs from 'node:fs';
import * as path from 'node:path';
import { isUtf8 } from 'node:buffer';
import * as zlib from 'node:zlib';
import { z } from 'zod';
import {
  FormatError,
  SkdError,
  defineComponent,
  describeValue,
  optionsFactory,
  type ChatMessage,
  type Dataset,
  type DatasetSource,
  type Example,
  type Rng,
  type SplitName,
  type Tokenizer,
} from '@skd/core';

/** What to do with a bad record: stop with its file and line (default), or skip it and count it. */
export type InvalidPolicy = 'fail' | 'skip';

export interface JsonlDatasetOptions {
  readonly name: string;
  /** Files per split (JSONL, gzipped JSONL ending in .gz, or a .json array), resolved against `baseDir`. */
  readonly files: Partial<Record<SplitName, string>>;
  readonly baseDir: string;
  /**
   * Record fields holding the prompt and the response, or a conversation (`messages`: a list of
   * { role, content }, the last one the assistant's response); `extra` fields are kept in `Example.fields`.
   */
  readonly fields: { readonly prompt: string; readonly response: string; readonly messages?: string; readonly extra: readonly string[] };
  /** Prompt template; `{prompt}` and `{<field>}` are replaced by record fields. "chat": the tokenizer's chat template. */
  readonly template: string;
  /** A system message put before chat prompts built from prompt/response records. */
  readonly system?: string | undefined;
  /** Renders conversations (records with messages, or template "chat"): the run's tokenizer. */
  readonly chat?: ChatRenderer | undefined;
  /** Keep at most this many training examples (after shuffling): the low-data setting. */
  readonly limit?: number | undefined;
  /** Shuffle the training split deterministically (from the run seed). */
  readonly shuffle: boolean;
  readonly onInvalid: InvalidPolicy;
  readonly rng: Rng;
  /** Strings that end a response (every split's `Dataset.stopStrings`). */
  readonly stop?: readonly string[] | undefined;
}

/** What chat examples need from the tokenizer: its template, and the strings that end a turn. */
export interface ChatRenderer {
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string;
  /** Text of the tokens that end generation (EOS, end of turn): the trained response is cut after the first. */
  readonly stops: readonly string[];
}

/** The tokenizer's chat template as a ChatRenderer, or undefined when it has none. */
export function chatRenderer(tokenizer: Tokenizer | undefined): ChatRenderer | undefined {
  if (!tokenizer?.renderChat) return undefined;
  const ids = [tokenizer.special.eos, ...(tokenizer.special.stop ?? [])];
  return {
    render: (messages, addGenerationPrompt) =>
      (tokenizer.renderChat as NonNullable<Tokenizer['renderChat']>).call(tokenizer, messages, { addGenerationPrompt }),
    stops: ids.map((id) => tokenizer.decode([id], { keepSpecial: true })).filter((t) => t.length > 0),
  };
}

/**
 * A conversation as an example: the prompt is every message before the last rendered with the
 * generation cue; the trained response is what the full rendering adds to it, cut after the first
 * end-of-turn or EOS (what generation stops on); the reference is the last message's content.
 */
export function chatExample(chat: ChatRenderer, messages: readonly ChatMessage[]): { prompt: string; response: string; target: string } {
  const last = messages[messages.length - 1];
  if (!last || last.role !== 'assistant')
    throw new SkdError(`the last message must be the assistant's response, got ${last ? `role ${JSON.stringify(last.role)}` : 'no messages'}`);
  const prompt = chat.render(messages.slice(0, -1), true);
  const full = chat.render(messages, false);
  if (!full.startsWith(prompt)) {
    throw new SkdError('the chat template renders the conversation without its start as the generation prompt, so the response cannot be told apart', {
      hint: 'use prompt/response records with a plain template',
    });
  }
  let target = full.slice(prompt.length);
  const ends = chat.stops.map((stop) => target.indexOf(stop)).map((at, i) => (at < 0 ? Infinity : at + (chat.stops[i] as string).length));
  const cut = Math.min(...ends);
  if (cut !== Infinity) target = target.slice(0, cut);
  return { prompt, response: last.content, target };
}

/** What reading found: records kept and skipped, by reason. Nothing is dropped without a count. */
export interface ReadReport {
  kept: number;
  skipped: Record<string, number>;
}

/**
 * Examples from JSONL (one JSON object per line) or JSON-array files. Without shuffle or limit a
 * split streams line by line; with them it is read once, then served from memory.
 */
export class JsonlDataset implements DatasetSource {
  static readonly kind = 'jsonl';
  readonly reports: Partial<Record<SplitName, ReadReport>> = {};
  private readonly loaded = new Map<SplitName, Example[]>();

  constructor(private readonly options: JsonlDatasetOptions) {
    for (const [split, file] of Object.entries(options.files)) {
      const absolute = path.resolve(options.baseDir, file);
      if (!fs.existsSync(absolute)) throw new FormatError(absolute, `the ${split} file of dataset "${options.name}" does not exist`);
    }
  }

  get name(): string {
    return this.options.name;
  }

  split(split: SplitName): Dataset {
    const file = this.options.files[split];
    const buffered = split === 'train' && (this.options.shuffle || this.options.limit !== undefined);
    const examples = (): AsyncGenerator<Example> => this.examples(split, file, buffered);
    return {
      name: `${this.options.name}/${split}`,
      ...(this.loaded.has(split) ? { size: this.loaded.get(split)?.length } : {}),
      ...(this.options.stop?.length ? { stopStrings: this.options.stop } : {}),
      [Symbol.asyncIterator]: examples,
    };
  }

  private async *examples(split: SplitName, file: string | undefined, buffered: boolean): AsyncGenerator<Example> {
    if (!file) return;
    const absolute = path.resolve(this.options.baseDir, file);
    if (!buffered) {
      yield* this.read(split, absolute);
      return;
    }
    if (!this.loaded.has(split)) {
      const all: Example[] = [];
      for await (const example of this.read(split, absolute)) all.push(example);
      if (this.options.shuffle) this.options.rng.fork(`shuffle/${split}`).shuffle(all);
      this.loaded.set(split, this.options.limit !== undefined ? all.slice(0, this.options.limit) : all);
    }
    yield* this.loaded.get(split) as Example[];
  }

  /** A conversation (checked: a list of { role, content } strings ending with the assistant's) as a chat example; undefined after reporting a bad one. */
  private chatFrom(value: unknown, bad: (reason: string, detail: string) => void): { prompt: string; response: string; target: string } | undefined {
    if (!this.options.chat) {
      throw new SkdError('chat records (messages, or template "chat") need a tokenizer with a chat template', {
        hint: 'use "tokenizer": { "kind": "hf", "options": { "path": <model folder> } } with a model whose tokenizer_config.json has a chat_template',
      });
    }
    if (
      !Array.isArray(value) ||
      value.length === 0 ||
      !value.every((m) => m && typeof m === 'object' && typeof (m as ChatMessage).role === 'string' && typeof (m as ChatMessage).content === 'string')
    ) {
      bad('wrong-type', 'messages must be a non-empty list of { "role": string, "content": string }');
      return undefined;
    }
    try {
      return chatExample(
        this.options.chat,
        (value as ChatMessage[]).map(({ role, content }) => ({ role, content })),
      );
    } catch (error) {
      if (!(error instanceof SkdError)) throw error;
      bad('chat-template', error.message);
      return undefined;
    }
  }

  /** Reads every record of a file, applying the field mapping, template and invalid-record policy. */
  async *read(split: SplitName, file: string): AsyncGenerator<Example> {
    const report: ReadReport = { kept: 0, skipped: {} };
    this.reports[split] = report;
    const bad = (line: number, reason: string, detail: string): void => {
      if (this.options.onInvalid === 'fail') {
        throw new FormatError(`${file}:${line}`, `${detail}`, {
          hint: 'fix the record, or set dataset.options.onInvalid: "skip" to skip and count such records',
        });
      }
      report.skipped[reason] = (report.skipped[reason] ?? 0) + 1;
    };
    for await (const { line, text, validUtf8 } of jsonlRecords(file)) {
      if (!validUtf8) {
        bad(line, 'invalid-utf8', 'bytes that are not valid UTF-8 (the file is in another encoding, or damaged)');
        continue;
      }
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (error) {
        bad(line, 'malformed', `not valid JSON: ${(error as Error).message}`);
        continue;
      }
      if (record === null || typeof record !== 'object' || Array.isArray(record)) {
        bad(line, 'malformed', 'each record must be a JSON object');
        continue;
      }
      const fields = record as Record<string, unknown>;
      const messagesField = this.options.fields.messages ?? 'messages';
      if (fields[messagesField] !== undefined) {
        const chat = this.chatFrom(fields[messagesField], (reason, detail) => bad(line, reason, detail));
        if (!chat) continue;
        report.kept += 1;
        const extra = Object.fromEntries(this.options.fields.extra.map((f) => [f, fields[f]]));
        yield { id: `${path.basename(file)}:${line}`, ...chat, ...(this.options.fields.extra.length ? { fields: extra } : {}) };
        continue;
      }
      const { prompt: promptField, response: responseField } = this.options.fields;
      const missing = [promptField, responseField, ...this.options.fields.extra].filter((f) => fields[f] === undefined);
      if (missing.length) {
        bad(
          line,
          'missing-field',
          `missing field${missing.length > 1 ? 's' : ''} ${missing.map((f) => JSON.stringify(f)).join(', ')} (record has ${Object.keys(fields).join(', ') || 'no fields'})`,
        );
        continue;
      }
      const response = fields[responseField];
      if (typeof response !== 'string') {
        bad(
          line,
          'wrong-type',
          `field ${JSON.stringify(responseField)} must be a string, got ${typeof response === 'object' ? (Array.isArray(response) ? 'an array' : 'an object') : `the ${typeof response} ${describeValue(response)}`}`,
        );
        continue;
      }
      if (response.trim() === '') {
        bad(line, 'empty-response', `empty response in field ${JSON.stringify(responseField)}`);
        continue;
      }
      const extra = Object.fromEntries(this.options.fields.extra.map((f) => [f, fields[f]]));
      const keep = this.options.fields.extra.length ? { fields: extra } : {};
      if (this.options.template === 'chat') {
        const system: ChatMessage[] = this.options.system !== undefined ? [{ role: 'system', content: this.options.system }] : [];
        const chat = this.chatFrom(
          [...system, { role: 'user', content: String(fields[promptField]) }, { role: 'assistant', content: response }],
          (reason, detail) => bad(line, reason, detail),
        );
        if (!chat) continue;
        report.kept += 1;
        yield { id: `${path.basename(file)}:${line}`, ...chat, ...keep };
        continue;
      }
      const prompt = this.options.template.replace(/\{(\w+)\}/g, (whole, name: string) => {
        const value = name === 'prompt' ? fields[promptField] : fields[name];
        return value === undefined ? whole : String(value);
      });
      report.kept += 1;
      yield { id: `${path.basename(file)}:${line}`, prompt, response, ...keep };
    }
  }
}

/**
 * The records of a JSONL file (streamed, blank lines skipped; gzip-compressed when it ends in .gz,
 * as the large bundled training splits are), or the elements of a JSON array file, as JSON text
 * with 1-based line numbers; shared by datasets and `skd tokenizer`.
 */
export async function* jsonlRecords(file: string): AsyncGenerator<{ line: number; text: string; validUtf8: boolean }> {
  if (file.endsWith('.json')) {
    let parsed: unknown;
    const bytes = fs.readFileSync(file);
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      throw new FormatError(file, `not valid JSON: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new FormatError(file, 'a .json dataset must hold an array of records');
    if (!isUtf8(bytes)) throw new FormatError(file, 'bytes that are not valid UTF-8 (the file is in another encoding, or damaged)');
    for (const [i, record] of parsed.entries()) yield { line: i + 1, text: JSON.stringify(record), validUtf8: true };
    return;
  }
  const raw = fs.createReadStream(file);
  const input = file.endsWith('.gz') ? raw.pipe(zlib.createGunzip()) : raw;
  if (input !== raw) raw.on('error', (error) => input.destroy(error));
  // Lines are split as bytes, so a line whose bytes are not UTF-8 is reported instead of silently decoded with U+FFFD.
  let line = 0;
  let pending: Buffer[] = [];
  const record = (bytes: Buffer) => {
    line += 1;
    const body = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.subarray(0, bytes.length - 1) : bytes;
    const text = body.toString('utf8');
    return text.trim() === '' ? undefined : { line, text, validUtf8: isUtf8(body) };
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, start)) {
        const out = record(Buffer.concat([...pending, chunk.subarray(start, at)]));
        pending = [];
        start = at + 1;
        if (out) yield out;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length) {
      const out = record(Buffer.concat(pending));
      if (out) yield out;
    }
  } catch (cause) {
    if (cause instanceof FormatError) throw cause;
    throw new FormatError(file, `cannot read${line ? ` past line ${line}` : ''}: ${(cause as Error).message}`, { cause });
  }
}

export const jsonlDatasetEntry = defineComponent({
  component: 'dataset',
  kind: JsonlDataset.kind,
  summary: 'JSONL or JSON-array files per split, with field names, a prompt template and a low-data limit',
  options: z.strictObject({
    name: z.string().default('jsonl').describe('dataset name in reports'),
    files: z
      .strictObject({ train: z.string().optional(), eval: z.string().optional(), test: z.string().optional() })
      .refine((f) => f.train || f.eval || f.test, 'name at least one split file')
      .describe('file per split, relative to the config file'),
    fields: z
      .strictObject({
        prompt: z.string().default('prompt'),
        response: z.string().default('response'),
        messages: z.string().default('messages'),
        extra: z.array(z.string()).default([]),
      })
      .default({ prompt: 'prompt', response: 'response', messages: 'messages', extra: [] })
      .describe('record fields for the prompt, the response, a conversation (records with it are chats), and extra fields evaluators need'),
    template: z.string().default('{prompt}').describe('prompt template with {prompt} and {<field>} placeholders, or "chat": the tokenizer\'s chat template'),
    system: z.string().optional().describe('with template "chat": a system message before each prompt'),
    limit: z.number().int().min(1).optional().describe('keep this many training examples (e.g. 100 for the low-data setting)'),
    shuffle: z.boolean().default(true).describe('shuffle the training split with the run seed'),
    onInvalid: z.enum(['fail', 'skip']).default('fail').describe('bad records stop the run (fail) or are skipped and counted'),
    stop: z
      .array(z.string().min(1, 'a stop string must not be empty'))
      .default([])
      .describe(
        'strings that end a response: a row stops generating at the first token that holds one, and its text is cut before the first one, before it is trained on or scored (the SKD authors\' per-task stop strings, e.g. ["\\n"] for translation)',
      ),
  }),
  create: (options, deps) => new JsonlDataset({ ...options, baseDir: deps.baseDir, rng: deps.rng, chat: chatRenderer(deps.tokenizer) }),
});

/** Options of the JSONL dataset with their defaults, checked as a config's would be (for programs). */
export const jsonlDatasetOptions = optionsFactory(jsonlDatasetEntry, 'jsonlDatasetOptions');
