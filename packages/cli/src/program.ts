import { Command, InvalidArgumentError, Option } from 'commander';
import { selectBackend } from '@skd/backend';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import {
  applyOverrides,
  buildRun,
  configBaseDir,
  createRegistries,
  planRun,
  readConfigFile,
  resolveOverridePaths,
  type Registries,
} from '@skd/config';
import { ConfigError, FormatError, InterruptedError, Rng, SkdError, WriteError, cutAtStopStrings, describeSystemError, encodePrompt, type ComponentKind, type SplitName } from '@skd/core';
import { jsonlRecords } from '@skd/datasets';
import { BpeTokenizer, GptModel, exportHuggingFace, generate, loadCheckpoint, loadHuggingFaceModel, tokenizerConfigPath, writeBpeTokenizer } from '@skd/models';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runEvaluation, runExperiment } from './experiment';
import { startDashboard } from './dashboard';
import { terminalIo, type Io } from './io';
import { FIGURE_FORMATS, writeFigures, type FigureFormat } from './figure-files';
import { findRuns, parsePairedSpec, prepareBaselines, writeReport } from './report';
import { parseRedisUrl, sweepJobs } from './queue/jobs';
import { renderStatus } from './queue/status';
import { enqueueSweep, followSweep, openQueue, sweepStatus } from './queue/sweep-queue';
import { runWorker } from './queue/worker';
import { loadSweep, runSweep } from './sweep';

export type { Io } from './io';

/** `svg,png` → ['svg', 'png'], each checked. */
function figureFormats(value: string): FigureFormat[] {
  const formats = value.split(',').map((f) => f.trim());
  const unknown = formats.filter((f) => !(FIGURE_FORMATS as readonly string[]).includes(f));
  if (unknown.length > 0 || formats.length === 0) throw new InvalidArgumentError(`expected ${FIGURE_FORMATS.join(', ')} or both comma-separated, got "${value}"`);
  return [...new Set(formats)] as FigureFormat[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The version of the installed @skd/cli (its package.json, one folder above dist/). */
export function cliVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
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

/** Loads a config file with `--set` overrides applied; relative paths resolve from its folder. */
/** A sweep file rather than a run config: it names a base config and a grid. */
function isSweepFile(json: unknown): boolean {
  return json !== null && typeof json === 'object' && 'grid' in json && 'base' in json;
}

/**
 * `skd check` on a sweep file: every run the sweep would plan, checked as the sweep checks it
 * (schema, kinds, options, modules; nothing built), one line each. Any problem is bad input (exit 2).
 */
function checkSweep(file: string, sets: readonly string[], io: Io): void {
  const sweep = loadSweep(file);
  const extra = sets.map((s) => resolveOverridePaths(s, process.cwd()));
  const base = readConfigFile(sweep.base);
  const baseDir = configBaseDir(sweep.base, base);
  let failed = 0;
  for (const run of sweep.runs) {
    try {
      planRun(applyOverrides(base, [...run.sets, ...extra]), { baseDir, source: run.name });
      io.out(`ok    ${run.name}`);
    } catch (error) {
      if (!(error instanceof SkdError)) throw error;
      failed += 1;
      const first = error instanceof ConfigError && error.issues[0] ? `${error.issues[0].path}: ${error.issues[0].message}` : error.message;
      io.out(`error ${run.name}: ${first}`);
    }
  }
  if (failed > 0) throw new SkdError(`${failed} of ${sweep.runs.length} runs of ${file} do not validate`, { hint: 'fix the sweep file or its base config, then check again' });
  io.out(`sweep ok: ${file} (${sweep.runs.length} runs, base ${sweep.base})`);
}

function loadConfig(file: string, sets: readonly string[]): { config: unknown; baseDir: string } {
  // --set values were typed here: their relative paths mean files from the current directory.
  const config = applyOverrides(readConfigFile(file), sets.map((s) => resolveOverridePaths(s, process.cwd())));
  return { config, baseDir: configBaseDir(file, config) };
}

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
    properties?: Record<string, { type?: string | string[]; enum?: unknown[]; default?: unknown; description?: string; minimum?: number; maximum?: number; exclusiveMinimum?: number; anyOf?: { type?: string }[] }>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, p]) => {
    const base = p.enum ? p.enum.map((v) => JSON.stringify(v)).join(' | ') : Array.isArray(p.type) ? p.type.join(' | ') : (p.type ?? p.anyOf?.map((a) => a.type ?? 'value').join(' | ') ?? 'value');
    const low = p.minimum ?? p.exclusiveMinimum;
    const high = p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER ? p.maximum : undefined;
    const range = low !== undefined || high !== undefined ? ` ${p.exclusiveMinimum !== undefined ? '(' : '['}${low ?? ''}..${high ?? ''}]` : '';
    return { name, type: `${base}${range}`, required: json.required?.includes(name) === true && p.default === undefined, ...(p.default !== undefined ? { default: p.default } : {}), ...(p.description ? { description: p.description } : {}) };
  });
}

function describeKinds(registries: Registries, only: ComponentKind | undefined, kind: string | undefined, json: boolean, io: Io): void {
  const components = (Object.keys(registries) as ComponentKind[]).filter((k) => !only || k === only);
  const listed = components.map((component) => ({
    component,
    kinds: registries[component].list().filter((e) => !kind || e.kind === kind).map((entry) => ({ kind: entry.kind, summary: entry.summary, options: optionDocs(entry.options) })),
  }));
  if (kind && listed.every((c) => c.kinds.length === 0)) {
    throw new SkdError(`unknown ${only} kind "${kind}"`, { hint: `use one of ${components.flatMap((c) => registries[c].list().map((e) => e.kind)).join(', ')}` });
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

/** Exit codes: 0 done, 1 unexpected failure, 2 bad input (config, files), 130 interrupted (checkpoint written). */
export const EXIT_INTERRUPTED = 130;

/** What a command tells `main` beyond its output. */
export interface CommandState {
  code: number;
  /**
   * Called by commands that check the abort signal (train, distill, eval, sweep), so that a first
   * Ctrl-C aborts it instead of ending the process. Other commands keep the default: Ctrl-C ends them
   * at once, even inside synchronous work that never yields to the event loop.
   */
  catchInterrupts: () => void;
}

export function buildProgram(io: Io = terminalIo(), signal?: AbortSignal, exit: CommandState = { code: 0, catchInterrupts: () => undefined }): Command {
  const program = new Command('skd')
    .description('skd: knowledge distillation of language models (speculative KD and its baselines)')
    .version(cliVersion(), '-V, --version', 'print the version of skd')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  program
    .command('check')
    .description('validate a run config, build every component it names, and report them (no training); or validate every run of a sweep file, one line each')
    .argument('<config>', 'JSON run config or sweep file; relative paths in it resolve from its folder')
    .option('--set <key=value>', 'override a config value (repeatable), e.g. --set sampler.options.topK=10; relative paths in it resolve from the current directory', collect, [])
    .action(async (file: string, options: { set: string[] }) => {
      if (isSweepFile(readConfigFile(file))) {
        checkSweep(file, options.set, io);
        return;
      }
      const { config, baseDir } = loadConfig(file, options.set);
      const run = await buildRun(config, { baseDir, source: file });
      try {
        io.out(run.backend.summary);
        io.out(`tokenizer  ${run.config.tokenizer.kind} (vocabulary ${run.tokenizer.vocabSize})`);
        io.out(`student    ${run.config.student.kind} (context ${run.student.contextLength}, vocabulary ${run.student.vocabSize})`);
        io.out(`teacher    ${run.config.teacher ? `${run.config.teacher.kind} (context ${run.teacher?.contextLength}, vocabulary ${run.teacher?.vocabSize})` : '(none)'}`);
        for (const note of run.notes) io.out(`note       ${note}`);
        io.out(`sampler    ${run.config.sampler.kind}`);
        io.out(`divergence ${run.divergence.name}`);
        io.out(`dataset    ${run.config.dataset.kind}: ${['train', 'eval', 'test'].map((s) => `${s} ${run.dataset.split(s as 'train').size ?? '?'}`).join(', ')}`);
        io.out(`evaluators ${run.evaluators.map((e) => e.name).join(', ') || '(none)'}`);
        io.out(`config ok: ${file} (${tf.memory().numTensors} tensors allocated)`);
      } finally {
        run.dispose();
      }
    });

  const runOptions = (command: Command) =>
    command
      .argument('<config>', 'JSON run config; relative paths in it resolve from its folder')
      .option('--set <key=value>', 'override a config value (repeatable), e.g. --set training.steps=50; relative paths in it resolve from the current directory', collect, [])
      .option('--out <dir>', 'run directory (default runs/<config name>)')
      .option('--resume', 'continue the run in --out from its newest checkpoint', false);

  for (const mode of ['train', 'distill'] as const) {
    runOptions(
      program
        .command(mode)
        .description(
          mode === 'train'
            ? 'supervised fine-tuning (sampler "supervised", divergence "cross-entropy"): trains teachers and initial students'
            : 'knowledge distillation of the config\'s student from its teacher (SKD or any sampler/divergence)',
        ),
    ).action(async (file: string, options: { set: string[]; out?: string; resume: boolean }) => {
      exit.catchInterrupts();
      const result = await runExperiment({ configFile: file, sets: options.set, ...(options.out ? { out: options.out } : {}), resume: options.resume, mode, io, ...(signal ? { signal } : {}) });
      if (result.reason === 'cancelled') exit.code = EXIT_INTERRUPTED;
    });
  }

  program
    .command('eval')
    .description('what a run ends with, for the config\'s student as built: greedy generation on a split, the evaluators with 95% bootstrap intervals, validation loss, perplexity, teacher acceptance')
    .argument('<config>', 'JSON run config (point student at a checkpoint to evaluate a trained model)')
    .option('--set <key=value>', 'override a config value (repeatable); relative paths in it resolve from the current directory', collect, [])
    .addOption(new Option('--split <split>', 'the split to evaluate').choices(['train', 'eval', 'test']).default('test'))
    .option('--limit <n>', 'evaluate at most n examples (default: training.testLimit for test, training.evalLimit for eval)', integerOption(1))
    .option('--out <dir>', 'also write predictions, bootstrap scores and summary.json there, as a run folder skd report reads')
    .option('--group <name>', 'the report group of --out (default: its folder name)')
    .option('--json', 'print one JSON object (metrics and intervals) instead of lines', false)
    .action(async (file: string, options: { set: string[]; split: SplitName; limit?: number; out?: string; group?: string; json: boolean }) => {
      exit.catchInterrupts();
      const evaluation = await runEvaluation({
        configFile: file,
        sets: options.set,
        split: options.split,
        io,
        ...(signal ? { signal } : {}),
        ...(options.limit !== undefined ? { limit: options.limit } : {}),
        ...(options.out !== undefined ? { out: options.out } : {}),
        ...(options.group !== undefined ? { group: options.group } : {}),
      });
      const { metrics, intervals } = evaluation;
      if (options.json) io.out(JSON.stringify({ split: options.split, metrics, intervals }));
      else {
        io.out(`eval ${options.split}: ${evaluation.predictions.length} examples${options.out ? ` -> ${options.out}` : ''}`);
        for (const [name, value] of Object.entries(metrics)) {
          const range = intervals[name];
          io.out(`  ${name.padEnd(18)} ${Number.isInteger(value) ? value : value.toFixed(4)}${range ? `  95% interval [${range[0].toFixed(4)}, ${range[1].toFixed(4)}]` : ''}`);
        }
      }
    });

  program
    .command('generate')
    .description('generate from the config\'s student for one prompt, written into the dataset\'s prompt template and cut at its stop strings as in training and evaluation (--raw: as given, uncut)')
    .argument('<config>', 'JSON run config')
    .requiredOption('--prompt <text>', 'the prompt (the {prompt} of the dataset\'s template)')
    .option('--raw', 'feed the prompt as given, without the dataset\'s template', false)
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
        const prompt = options.raw ? options.prompt : chat ? chatPrompt(run.tokenizer, [...system, { role: 'user', content: options.prompt }]) : applyTemplate(datasetOptions?.template, options.prompt);
        const { tokens } = await generate(run.student, [encodePrompt(run.tokenizer, prompt)], {
          maxNewTokens: options.maxNewTokens,
          eos: run.tokenizer.special.eos,
          ...(run.tokenizer.special.stop ? { stop: run.tokenizer.special.stop } : {}),
          pad: run.tokenizer.special.pad,
          rng: Rng.create(run.config.seed).fork('generate'),
          ...(options.temperature !== undefined ? { temperature: options.temperature } : { greedy: true }),
        });
        // Cut before the dataset's first stop string, as training and evaluation cut (not with --raw).
        const generated = tokens[0] ?? [];
        const stop = options.raw ? undefined : run.dataset.split('test').stopStrings;
        io.out(run.tokenizer.decode(cutAtStopStrings(run.tokenizer, generated, stop) ?? generated));
      } finally {
        run.dispose();
      }
    });

  program
    .command('export')
    .description('write a trained student (a run folder or a checkpoint) as a Hugging Face folder of its family (GPT-2, Llama, Qwen2, Gemma, Gemma 2): config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json')
    .argument('<model>', 'a run folder (its model/), or a checkpoint folder (model/ or checkpoints/step-N)')
    .requiredOption('--out <dir>', 'the folder to write (must not exist)')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, options: { out: string; json?: boolean }) => {
      const folder = fs.existsSync(path.join(source, 'model', 'config.json')) ? path.join(source, 'model') : source;
      io.err((await selectBackend()).short);
      const { model, tokenizer } = loadCheckpoint(folder);
      try {
        await exportHuggingFace(options.out, { model, tokenizer });
        // Read back with the Hugging Face loader: the same logits, or the export is not kept.
        const reloaded = loadHuggingFaceModel(options.out, model.vocabSize < model.config.vocabSize ? { outputVocab: model.vocabSize } : {});
        let maxDiff = 0;
        try {
          const length = Math.min(16, model.contextLength);
          const rows = [Array.from({ length }, (_, i) => (i * 7 + 1) % model.vocabSize), Array.from({ length }, (_, i) => (i * 13 + 5) % model.vocabSize)];
          maxDiff = tf.tidy(() => {
            const tokens = tf.tensor2d(rows, undefined, 'int32');
            return tf.max(tf.abs(tf.sub(model.logits(tokens), reloaded.logits(tokens)))).dataSync()[0] as number;
          });
        } finally {
          reloaded.dispose();
        }
        if (maxDiff > 0) {
          fs.rmSync(options.out, { recursive: true, force: true });
          throw new SkdError(`the exported model's logits differ from the checkpoint's by ${maxDiff}; nothing was kept`);
        }
        const family = model instanceof GptModel ? 'GPT-2' : model.config.architecture;
        const result = { source: path.resolve(folder), out: path.resolve(options.out), architecture: family, layers: model.config.layers, dModel: model.config.dModel, vocabSize: model.config.vocabSize, reloadedLogitsMaxDiff: maxDiff };
        io.out(options.json ? JSON.stringify(result) : `exported ${result.source} -> ${result.out} (${family}: ${result.layers} layers, d=${result.dModel}, vocabulary ${result.vocabSize}); read back by the Hugging Face loader to the same logits`);
      } finally {
        model.dispose();
      }
    });

  program
    .command('sweep')
    .description('run a grid of configs one after another (a killed sweep continues where it stopped), or through a Redis queue on several machines')
    .argument('<sweep>', 'sweep file: { base, out, mode, grid: { "config.path": [values], "@axis": [{ name, set: { path: value } }] }, set: [] }; its relative paths (base, out, and paths in its values) resolve from its folder')
    .option('--queue <url>', 'enqueue the runs in the Redis queue at redis://HOST:PORT[/DB] for `skd worker`s instead of running them here')
    .option('--no-wait', 'with --queue: enqueue and return, without following the runs')
    .option('--status', 'with --queue: print where every run of the sweep is (waiting, active with step and ETA, completed, failed with the error) and return')
    .option('--json', 'with --status: the same as JSON')
    .option('--only <axis=values>', 'run (or enqueue, or show) only the runs with these values of an axis, e.g. --only method=skd,on-policy --only data=100; repeatable', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .action(async (file: string, options: { queue?: string; wait: boolean; status?: boolean; json?: boolean; only: string[] }) => {
      if (!options.queue) {
        const misplaced = [options.status && '--status', !options.wait && '--no-wait', options.json && '--json'].filter(Boolean);
        if (misplaced.length) throw new SkdError(`${misplaced.join(' and ')} only apply to a queued sweep`, { hint: 'add --queue redis://HOST:PORT' });
        exit.catchInterrupts();
        const { done, failed, elsewhere, total } = await runSweep(file, io, signal, options.only);
        io.out(`sweep: ${done}/${total} runs done${failed ? `, ${failed} failed` : ''}${elsewhere ? `, ${elsewhere} running in other processes` : ''}`);
        if (signal?.aborted) exit.code = EXIT_INTERRUPTED;
        else if (failed) exit.code = 1;
        return;
      }
      if (options.json && !options.status) throw new SkdError('--json applies to --status', { hint: 'add --status' });
      const sweep = loadSweep(file, options.only);
      const target = parseRedisUrl(options.queue);
      const { queue, lastError } = await openQueue(target);
      try {
        if (options.status) {
          const runs = await sweepStatus(queue, sweepJobs(sweep));
          if (options.json) io.out(JSON.stringify({ sweep: sweep.file, queue: target.display, runs }));
          else renderStatus(runs).forEach((line) => io.out(line));
          return;
        }
        const jobs = await enqueueSweep(sweep, queue, io);
        if (!options.wait) return;
        exit.catchInterrupts();
        const { runs, interrupted } = await followSweep(queue, jobs, io, { ...(signal ? { signal } : {}), lastError });
        if (interrupted) {
          io.err(`stopped following; the runs go on in the queue (see them with: skd sweep ${file} --queue ${options.queue} --status)`);
          exit.code = EXIT_INTERRUPTED;
          return;
        }
        renderStatus(runs).forEach((line) => io.out(line));
        const done = runs.filter((r) => r.state === 'completed' || r.state === 'done earlier').length;
        const failed = runs.filter((r) => r.state === 'failed').length;
        io.out(`sweep: ${done}/${runs.length} runs done${failed ? `, ${failed} failed` : ''}`);
        if (failed) exit.code = 1;
      } finally {
        await queue.close();
      }
    });

  program
    .command('worker')
    .description('take runs of queued sweeps from Redis and train them here, each in its own process; the sweeps\' folders must be shared storage')
    .requiredOption('--queue <url>', 'the Redis queue, redis://HOST:PORT[/DB]')
    .option('--concurrency <n>', 'runs at once (each uses the machine\'s cores: 1 is usually fastest)', integerOption(1), 1)
    .option('--max-jobs <m>', 'take at most this many runs, then exit', integerOption(1))
    .option('--lock-duration <seconds>', 'how long a run stays with a worker that stopped answering before another worker takes it over', integerOption(2), 30)
    .action(async (options: { queue: string; concurrency: number; maxJobs?: number; lockDuration: number }) => {
      const target = parseRedisUrl(options.queue);
      // Ctrl-C or SIGTERM: every run finishes its step, checkpoints and goes back to the queue.
      exit.catchInterrupts();
      const result = await runWorker({
        target,
        concurrency: options.concurrency,
        ...(options.maxJobs !== undefined ? { maxJobs: options.maxJobs } : {}),
        lockSeconds: options.lockDuration,
        io,
        ...(signal ? { signal } : {}),
      });
      io.out(`worker: ${result.completed} runs completed, ${result.failed} failed${result.handedBack ? `, ${result.handedBack} handed back` : ''}`);
      if (result.fatal) throw result.fatal;
      if (signal?.aborted) exit.code = EXIT_INTERRUPTED;
    });

  program
    .command('report')
    .description('results table (mean and std over seeds, 95% bootstrap intervals over test examples) and charts from run folders, as Markdown and HTML')
    .argument('<paths...>', 'run folders, or folders holding them (a sweep\'s out); several paths give one section each')
    .option('--out <dir>', 'where report.md and report.html go', 'report')
    .option('--paired <axis=value>', 'paired bootstrap tests of the groups with this sweep value against each other value of the axis, e.g. method=skd')
    .option(
      '--baseline <path>',
      'a model checkpoint (the starting student, the teacher) evaluated on the same test examples as the runs of each section (with the first run\'s config; kept under --out/baselines), or a finished run or eval folder; a row in every section (repeatable)',
      collect,
      [],
    )
    .option('--metric <name>', 'the headline metric of the figure and the first table (default: the task\'s own: passRate, exactMatch, chrf or rougeL)')
    .option('--format <list>', `also write each section's results-at-a-glance figure to --out/figures, as ${FIGURE_FORMATS.join(' and/or ')} (comma-separated; png needs Chromium)`, figureFormats)
    .option('--json', 'print the results as one JSON document (also written to report.json) instead of a line', false)
    .action(async (paths: string[], options: { out: string; paired?: string; baseline: string[]; metric?: string; format?: FigureFormat[]; json: boolean }) => {
      for (const p of paths) if (!fs.existsSync(p)) throw new FormatError(p, 'no such folder', { hint: 'give run folders, or a folder holding them (a sweep\'s out)' });
      const paired = options.paired !== undefined ? parsePairedSpec(options.paired) : undefined;
      const found = paths.map((p) => ({ title: path.basename(path.resolve(p)), runDirs: findRuns([p]) }));
      if (options.baseline.length > 0) exit.catchInterrupts();
      const sections = [];
      for (const section of found) {
        const baselines = await prepareBaselines(options.baseline, section, options.out, (b) => runEvaluation({ ...b, split: 'test', io, ...(signal ? { signal } : {}) }));
        sections.push({ ...section, runDirs: [...section.runDirs, ...baselines] });
      }
      const command = ['skd report', ...paths, '--out', options.out, ...(options.paired ? ['--paired', options.paired] : []), ...options.baseline.flatMap((b) => ['--baseline', b])].join(' ');
      const written = writeReport(sections, options.out, {
        command,
        ...(paired ? { paired } : {}),
        ...(options.metric !== undefined ? { metric: options.metric } : {}),
        onSkip: (dir, error) => io.err(`warning: ${dir} left out of the report: ${error.message}`),
      });
      const { runs, groups, skipped } = written;
      if (options.format) for (const file of writeFigures(written.figures, path.join(options.out, 'figures'), options.format)) io.err(`figure: ${file}`);
      if (options.json) io.out(JSON.stringify({ runs, groups, skipped, sections: written.sections }));
      else io.out(`report: ${runs} runs in ${groups} groups -> ${options.out}/report.md, ${options.out}/report.html, ${options.out}/report.json`);
    });

  program
    .command('dashboard')
    .description('serve a page on localhost that shows every run under a folder with its charts, updating while the runs train, and the table of finished runs')
    .argument('<runs-dir>', 'a folder of run folders (a sweep\'s out, runs/), searched three levels deep')
    .option('--port <n>', 'port to listen on (0: any free port)', integerOption(0), 6060)
    .option('--host <address>', 'address to bind; anything but 127.0.0.1 or localhost lets other machines read the runs folder', '127.0.0.1')
    .option('--refresh <seconds>', 'how often the page asks for changes', positiveNumberOption(), 2)
    .action(async (runsDir: string, options: { port: number; host: string; refresh: number }) => {
      if (options.port > 65535) throw new SkdError(`--port ${options.port}: expected at most 65535`);
      const dashboard = await startDashboard({
        root: runsDir,
        port: options.port,
        host: options.host,
        refreshSeconds: options.refresh,
        onChange: (state) => {
          const training = state.runs.filter((r) => r.state === 'training').length;
          const finished = state.runs.filter((r) => r.state === 'finished').length;
          io.err(`dashboard: ${state.runs.length} runs (${training} training, ${finished} finished)`);
        },
      });
      if (!['127.0.0.1', 'localhost', '::1'].includes(options.host)) io.err(`warning: --host ${options.host}: every file under ${runsDir} can be read by whoever reaches this address`);
      io.out(`skd dashboard: ${dashboard.url} (serving ${path.resolve(runsDir)}; Ctrl-C stops)`);
      // Serves until the process is ended (Ctrl-C ends it at once: there is nothing to keep).
      await new Promise<never>(() => undefined);
    });

  program
    .command('tokenizer')
    .description('train a byte-level BPE tokenizer on JSONL text fields and save it as Hugging Face files (tokenizer.json and tokenizer_config.json)')
    .argument('<files...>', 'JSONL files to learn from')
    .requiredOption('--out <file>', 'where tokenizer.json goes')
    .option('--fields <names>', 'comma-separated record fields to read', 'prompt,response')
    .option('--vocab-size <n>', 'vocabulary size, bytes and special tokens included', integerOption(1), 2000)
    .option('--min-frequency <n>', 'ignore pairs seen fewer times', integerOption(1), 2)
    .option('--split-digits', 'every digit its own token (for arithmetic)', false)
    .action(async (files: string[], options: { out: string; fields: string; vocabSize: number; minFrequency: number; splitDigits: boolean }) => {
      const fields = options.fields.split(',').map((f) => f.trim()).filter(Boolean);
      const texts: string[] = [];
      for (const file of files) {
        for await (const { line, text, validUtf8 } of jsonlRecords(file)) {
          if (!validUtf8) throw new FormatError(`${file}:${line}`, 'bytes that are not valid UTF-8 (the file is in another encoding, or damaged)');
          let record: Record<string, unknown>;
          try {
            record = JSON.parse(text) as Record<string, unknown>;
          } catch (cause) {
            throw new FormatError(`${file}:${line}`, `not valid JSON: ${(cause as Error).message}`);
          }
          for (const f of fields) if (typeof record[f] === 'string') texts.push(record[f] as string);
        }
      }
      if (texts.length === 0) throw new SkdError(`no text found in fields ${fields.join(', ')} of ${files.join(', ')}`, { hint: 'name the text fields with --fields' });
      const tokenizer = BpeTokenizer.train(texts, { vocabSize: options.vocabSize, minFrequency: options.minFrequency, splitDigits: options.splitDigits });
      writeBpeTokenizer(options.out, tokenizer);
      const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
      const tokens = texts.reduce((n, t) => n + tokenizer.encode(t).length, 0);
      io.out(`tokenizer: ${tokenizer.vocabSize} tokens from ${texts.length} texts, ${(bytes / tokens).toFixed(2)} bytes per token -> ${options.out} (and ${tokenizerConfigPath(options.out)})`);
      io.out(`use it with "tokenizer": { "kind": "bpe", "options": { "path": "${options.out}" } }`);
    });

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

  return program;
}

/** A conversation rendered with the tokenizer's chat template, ending with the assistant's cue. */
function chatPrompt(tokenizer: { renderChat?: (m: readonly { role: string; content: string }[], o: { addGenerationPrompt: boolean }) => string }, messages: readonly { role: string; content: string }[]): string {
  if (!tokenizer.renderChat) throw new SkdError('the dataset\'s template is "chat", but the tokenizer has no chat template', { hint: 'pass --raw and give the whole prompt as the model should see it' });
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
    throw new SkdError(`the dataset's template ${JSON.stringify(template)} needs the record fields ${others.map((n) => `{${n}}`).join(', ')} besides {prompt}`, {
      hint: 'pass --raw and give the whole prompt as the model should see it',
    });
  }
  return template.replace(/\{prompt\}/g, () => prompt);
}

/**
 * Runs the CLI; SkdErrors print their message (what, value, fix) without a stack trace. During
 * training, evaluation, sweeps and workers the first SIGINT or SIGTERM lets the current step or batch
 * finish, keeps what is done (a checkpoint when training) and exits 130; a second one exits 130 at
 * once. Elsewhere Ctrl-C ends the process as it ends any program.
 */
export async function main(argv: readonly string[], io: Io = terminalIo(), signals = true): Promise<number> {
  const controller = new AbortController();
  const onInterrupt = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    io.err('interrupted: finishing the current step and keeping what is done (Ctrl-C again to quit now)');
    controller.abort();
  };
  const catchInterrupts = () => {
    if (!signals) return;
    for (const name of ['SIGINT', 'SIGTERM'] as const) {
      process.off(name, onInterrupt);
      process.on(name, onInterrupt);
    }
  };
  const exit: CommandState = { code: 0, catchInterrupts };
  try {
    await buildProgram(io, controller.signal, exit).parseAsync([...argv], { from: 'user' });
    return exit.code;
  } catch (error) {
    if (error instanceof InterruptedError) {
      io.err(error.message);
      return EXIT_INTERRUPTED;
    }
    if (error instanceof WriteError) {
      io.err(`error: ${error.message}`);
      return 1;
    }
    if (error instanceof SkdError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    const { code, path: file, syscall } = error as { code?: unknown; path?: unknown; syscall?: unknown };
    // Commander has printed its message (and usage): help and --version end well, misuse is bad input.
    if (typeof code === 'string' && code.startsWith('commander.')) return (error as { exitCode?: number }).exitCode === 0 ? 0 : 2;
    // A file system error we did not wrap: one line with the path and the cause, not a stack.
    if (typeof code === 'string' && typeof file === 'string') {
      io.err(`error: ${typeof syscall === 'string' ? `${syscall} ` : ''}${file}: ${describeSystemError(error)}`);
      return 1;
    }
    io.err(String((error as Error).stack ?? error));
    return 1;
  } finally {
    if (signals) for (const name of ['SIGINT', 'SIGTERM'] as const) process.off(name, onInterrupt);
  }
}
