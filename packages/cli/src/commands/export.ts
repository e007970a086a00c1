import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '@skd/backend';
import { SkdError, type LanguageModel } from '@skd/core';
import { DecoderModel, GptModel, exportHuggingFace, exportPeftAdapter, loadCheckpoint, loadHuggingFaceModel, readSafetensors } from '@skd/models';
import type { CommandContext } from '../context';

/** Largest difference of two models' logits on two fixed rows of tokens. */
function logitsDifference(a: LanguageModel, b: LanguageModel): { maxDiff: number; scale: number } {
  const length = Math.min(16, a.contextLength);
  const rows = [Array.from({ length }, (_, i) => (i * 7 + 1) % a.vocabSize), Array.from({ length }, (_, i) => (i * 13 + 5) % a.vocabSize)];
  return tf.tidy(() => {
    const tokens = tf.tensor2d(rows, undefined, 'int32');
    const x = a.logits(tokens);
    return { maxDiff: tf.max(tf.abs(tf.sub(x, b.logits(tokens)))).dataSync()[0] as number, scale: tf.max(tf.abs(x)).dataSync()[0] as number };
  });
}

/** The adapters written to a PEFT folder, read back onto the model's frozen weights. */
function reloadAdapter(model: DecoderModel, dir: string): DecoderModel {
  const lora = model.lora;
  if (!lora) throw new SkdError('no adapters');
  const saved = readSafetensors(path.join(dir, 'adapter_model.safetensors')).arrays;
  const adapters = new Map<string, tf.Tensor>();
  try {
    for (const [name] of lora.variables) {
      const m = /^(model\.layers\.\d+\..+)\.(lora_[AB])$/.exec(name) as RegExpExecArray;
      const stored = saved.get(`base_model.model.${m[1]}.${m[2]}.weight`);
      if (!stored) throw new SkdError(`the adapter folder lacks ${m[1]}.${m[2]}`);
      adapters.set(name, tf.transpose(tf.tensor(stored.data, [...stored.shape])));
    }
    return new DecoderModel(model.config, { weights: model.heldWeights, dtype: model.dtype, lora: lora.config, adapters, outputVocab: model.vocabSize });
  } finally {
    adapters.forEach((t) => t.dispose());
  }
}

/** `skd export`: a trained student as a Hugging Face folder (or its LoRA adapters as a PEFT folder), kept only if it reads back to the same logits. */
export function exportCommand(program: Command, { io }: CommandContext): void {
  program
    .command('export')
    .description(
      'write a trained student (a run folder or a checkpoint) as a Hugging Face folder of its family (GPT-2, Llama, Qwen2, Qwen3, Mistral, Phi-3, OLMo 2, Gemma, Gemma 2, Gemma 3): config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json; a LoRA student with its adapters merged in, or with --adapter its adapters alone as a PEFT folder',
    )
    .argument('<model>', 'a run folder (its model/), or a checkpoint folder (model/ or checkpoints/step-N)')
    .requiredOption('--out <dir>', 'the folder to write (must not exist)')
    .option('--adapter', "a LoRA student's adapters only, as a PEFT adapter folder (adapter_config.json, adapter_model.safetensors) for its base model")
    .option('--base <name>', 'with --adapter: the base model adapter_config.json names (default: the Hugging Face folder the student was read from)')
    .option('--json', 'print the result as JSON')
    .action(async (source: string, options: { out: string; adapter?: boolean; base?: string; json?: boolean }) => {
      const folder = fs.existsSync(path.join(source, 'model', 'config.json')) ? path.join(source, 'model') : source;
      if (options.base !== undefined && !options.adapter)
        throw new SkdError('--base names the base model of an adapter folder', { hint: 'add --adapter, or drop --base' });
      io.err((await selectBackend()).short);
      const { model, tokenizer } = loadCheckpoint(folder);
      try {
        if (options.adapter) {
          if (!(model instanceof DecoderModel) || !model.lora) {
            throw new SkdError(`${folder} holds no LoRA adapters: it trained every weight`, { hint: 'export it without --adapter' });
          }
          await exportPeftAdapter(options.out, { model, ...(options.base !== undefined ? { base: options.base } : {}) });
          const reloaded = reloadAdapter(model, options.out);
          let maxDiff: number;
          try {
            maxDiff = logitsDifference(model, reloaded).maxDiff;
          } finally {
            reloaded.dispose();
          }
          if (maxDiff > 0) {
            fs.rmSync(options.out, { recursive: true, force: true });
            throw new SkdError(`the exported adapters' logits differ from the checkpoint's by ${maxDiff}; nothing was kept`);
          }
          const config = JSON.parse(fs.readFileSync(path.join(options.out, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string | null };
          const result = {
            source: path.resolve(folder),
            out: path.resolve(options.out),
            architecture: model.config.architecture,
            rank: model.lora.config.rank,
            alpha: model.lora.config.alpha,
            targets: model.lora.config.targets,
            adapterParameters: model.trainableParameterCount,
            base: config.base_model_name_or_path,
            reloadedLogitsMaxDiff: maxDiff,
          };
          io.out(
            options.json
              ? JSON.stringify(result)
              : `exported the adapters of ${result.source} -> ${result.out} (PEFT LoRA, rank ${result.rank}, alpha ${result.alpha}, ${result.targets.join(', ')}; ${result.adapterParameters} parameters) for base ${result.base ?? '(none recorded: pass --base)'}; read back to the same logits`,
          );
          return;
        }
        await exportHuggingFace(options.out, { model, tokenizer });
        // Read back with the Hugging Face loader: the same logits, or the export is not kept. Merged
        // adapters round differently from the adapters beside the weights, so those are held to float32's rounding.
        const reloaded = loadHuggingFaceModel(options.out, model.vocabSize < model.config.vocabSize ? { outputVocab: model.vocabSize } : {});
        let difference: { maxDiff: number; scale: number };
        try {
          difference = logitsDifference(model, reloaded);
        } finally {
          reloaded.dispose();
        }
        const merged = model instanceof DecoderModel && model.lora !== undefined;
        const { maxDiff } = difference;
        if (merged ? !(maxDiff <= 1e-5 * Math.max(1, difference.scale)) : maxDiff > 0) {
          fs.rmSync(options.out, { recursive: true, force: true });
          throw new SkdError(`the exported model's logits differ from the checkpoint's by ${maxDiff}; nothing was kept`);
        }
        const family = model instanceof GptModel ? 'GPT-2' : model.config.architecture;
        const result = {
          source: path.resolve(folder),
          out: path.resolve(options.out),
          architecture: family,
          layers: model.config.layers,
          dModel: model.config.dModel,
          vocabSize: model.config.vocabSize,
          adaptersMerged: merged,
          reloadedLogitsMaxDiff: maxDiff,
        };
        io.out(
          options.json
            ? JSON.stringify(result)
            : `exported ${result.source} -> ${result.out} (${family}: ${result.layers} layers, d=${result.dModel}, vocabulary ${result.vocabSize}${merged ? '; LoRA adapters merged into the weights' : ''}); read back by the Hugging Face loader to ${maxDiff === 0 ? 'the same logits' : `logits within ${maxDiff.toExponential(1)}`}`,
        );
      } finally {
        model.dispose();
      }
    });
}
