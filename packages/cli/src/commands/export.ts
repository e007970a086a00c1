import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '@skd/backend';
import { SkdError } from '@skd/core';
import { GptModel, exportHuggingFace, loadCheckpoint, loadHuggingFaceModel } from '@skd/models';
import type { CommandContext } from '../context';

/** `skd export`: a trained student as a Hugging Face folder, kept only if it reads back to the same logits. */
export function exportCommand(program: Command, { io }: CommandContext): void {
  program
    .command('export')
    .description(
      'write a trained student (a run folder or a checkpoint) as a Hugging Face folder of its family (GPT-2, Llama, Qwen2, Gemma, Gemma 2): config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json',
    )
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
        const result = {
          source: path.resolve(folder),
          out: path.resolve(options.out),
          architecture: family,
          layers: model.config.layers,
          dModel: model.config.dModel,
          vocabSize: model.config.vocabSize,
          reloadedLogitsMaxDiff: maxDiff,
        };
        io.out(
          options.json
            ? JSON.stringify(result)
            : `exported ${result.source} -> ${result.out} (${family}: ${result.layers} layers, d=${result.dModel}, vocabulary ${result.vocabSize}); read back by the Hugging Face loader to the same logits`,
        );
      } finally {
        model.dispose();
      }
    });
}
