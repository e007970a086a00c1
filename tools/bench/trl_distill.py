#!/usr/bin/env python3
"""The peer at real model shapes: TRL's stable DistillationTrainer, one on-policy distillation step
timed as the trainer runs it (the student's generation with the KV cache, student and teacher forward
passes, the generalized JSD at beta 0 = forward KL, backward, AdamW). float32 on the CPU (its bf16
default runs 40x slower on a CPU without native bf16 and is not what skd computes), no gradient
checkpointing, dropout off, temperature 1, at the given thread count. Prompts from a JSONL file
("prompt" field); the models are Hugging Face folders. Prints one JSON line: step times, losses and
the process's peak resident memory."""
import argparse, json, resource, tempfile, time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--student", required=True)
    p.add_argument("--teacher", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--learning-rate", type=float, default=1e-5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DistillationConfig, DistillationTrainer
    from trl import __version__ as trl_version

    with open(a.data, encoding="utf-8") as f:
        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]
    tokenizer = AutoTokenizer.from_pretrained(a.student)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    student = AutoModelForCausalLM.from_pretrained(a.student, dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(a.teacher, dtype=torch.float32)
    times, losses = [], []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t0)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    with tempfile.TemporaryDirectory() as out:
        config = DistillationConfig(
            output_dir=out, per_device_train_batch_size=a.batch, max_steps=a.steps, learning_rate=a.learning_rate,
            beta=0.0, temperature=1.0, max_completion_length=a.new_tokens, seed=0, use_cpu=True, bf16=False, fp16=False,
            gradient_checkpointing=False, report_to=[], save_strategy="no", logging_steps=1, dataloader_num_workers=0,
            disable_dropout=True, shuffle_dataset=False,
        )
        trainer = DistillationTrainer(model=student, teacher_model=teacher, args=config, train_dataset=Dataset.from_dict({"prompt": prompts}),
                                      processing_class=tokenizer, callbacks=[StepTimer()])
        trainer.train()
    print(json.dumps({"trl": trl_version, "torch": torch.__version__, "threads": a.threads, "stepSeconds": times, "losses": losses,
                      "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
