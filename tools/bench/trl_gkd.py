#!/usr/bin/env python3
"""The peer a user would otherwise pick: Hugging Face TRL's GKDTrainer (trl.experimental.gkd), one
distillation step timed as the trainer runs it (on-policy generation with the KV cache, the student
and teacher forward passes, the generalized JSD loss at beta 0, i.e. forward KL, backward, AdamW).
Fully on-policy (lmbda 1), temperature 1, float32 on the CPU at the given thread count. Prompts come
from a JSONL file (its "prompt" field, formatted by --template); the models are Hugging Face folders
(tools/bench/peers.cjs exports skd's committed ones). Prints one JSON line: the step times."""
import argparse, json, os, tempfile, time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--student", required=True)
    p.add_argument("--teacher", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--template", default="{prompt}\n")
    p.add_argument("--examples", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import __version__ as trl_version
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    tokenizer = AutoTokenizer.from_pretrained(a.student)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    prompts = []
    with open(a.data, encoding="utf-8") as f:
        for line in f:
            if len(prompts) == a.examples:
                break
            prompts.append(a.template.replace("{prompt}", json.loads(line)["prompt"]))

    def collate(rows):
        # Prompts left-padded, as GKDTrainer's generation takes them; with lmbda 1 every step replaces
        # input_ids, attention_mask and labels by the student's own completions.
        enc = tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")
        labels = enc["input_ids"].clone()
        labels[enc["attention_mask"] == 0] = -100
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels,
                "prompts": enc["input_ids"], "prompt_attention_mask": enc["attention_mask"]}

    student = AutoModelForCausalLM.from_pretrained(a.student, dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(a.teacher, dtype=torch.float32)
    times = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory() as out:
        config = GKDConfig(
            output_dir=out, per_device_train_batch_size=a.batch, max_steps=a.steps, learning_rate=1e-3,
            lmbda=1.0, beta=0.0, temperature=1.0, max_new_tokens=a.new_tokens, seed=0, use_cpu=True,
            report_to=[], save_strategy="no", logging_strategy="no", dataloader_num_workers=0, disable_dropout=True,
            max_length=None,
        )
        trainer = GKDTrainer(model=student, teacher_model=teacher, args=config, data_collator=collate,
                             train_dataset=Dataset.from_dict({"text": prompts}), processing_class=tokenizer,
                             callbacks=[StepTimer()])
        trainer.train()
    print(json.dumps({"trl": trl_version, "torch": torch.__version__, "threads": a.threads, "stepSeconds": times}))


if __name__ == "__main__":
    main()
