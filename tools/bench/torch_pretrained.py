#!/usr/bin/env python3
"""The PyTorch 2 side of the pretrained-shape benchmark (tools/bench/pretrained.cjs): transformers'
own model class at a shape of pretrained-shapes.json, random weights, SDPA attention, float32. A
training step is forward, cross-entropy on next tokens, backward and Adam (foreach); generation is
greedy with transformers' KV cache, called step by step (no generate() overhead). Prints one JSON line.
  --shape NAME --task train|generate --threads N --steps N --warmup N [--B 4 --T 256] [--prompt 32 --new 64 --batch 1]"""
import argparse, json, os, resource, time
import torch
from transformers import AutoConfig, AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("--shape", default="smollm2-135m")
p.add_argument("--task", default="train")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--warmup", type=int, default=1)
p.add_argument("--B", type=int, default=4)
p.add_argument("--T", type=int, default=256)
p.add_argument("--prompt", type=int, default=32)
p.add_argument("--new", type=int, default=64)
p.add_argument("--batch", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
shape = json.load(open(os.path.join(os.path.dirname(__file__), "pretrained-shapes.json")))[a.shape]["hf"]
config = AutoConfig.for_model(**shape)
config._attn_implementation = "sdpa"
model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
times = []
if a.task == "train":
    model.train()
    ids = torch.randint(0, config.vocab_size, (a.B, a.T))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    extra = {"B": a.B, "T": a.T}
else:
    model.eval()
    prompts = torch.randint(0, config.vocab_size, (a.batch, a.prompt))
    with torch.inference_mode():
        for i in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            out = model(input_ids=prompts, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            for _ in range(a.new - 1):
                out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000 / (a.new * a.batch))
    extra = {"batch": a.batch, "prompt": a.prompt, "newTokens": a.new}
times.sort()
print(json.dumps({"side": "torch", "threads": a.threads, "task": a.task, "parameters": sum(x.numel() for x in model.parameters()), **extra, "ms": times[len(times) // 2], "times": times, "maxRssGB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "torch": torch.__version__}))
