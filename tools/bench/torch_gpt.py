#!/usr/bin/env python3
"""PyTorch CPU yardstick: the same GPT as packages/models (pre-LayerNorm, tanh-GELU, learned
positions, tied head), the same training step (Adam 1e-3, cross-entropy on next tokens) and the
same greedy generation with a KV cache. Prints one JSON line. tools/bench/run.cjs runs it at every
thread count (torch.set_num_threads) and with OpenBLAS, which PyTorch calls for its matrix products
and which keeps a thread pool of its own, at its default and at one thread (OPENBLAS_NUM_THREADS is
read when the library loads, so the caller sets it in the environment), and compares skd with the
fastest configuration."""
import argparse, json, math, os, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x, past=None):
        B, S, d = x.shape
        h, dh = self.heads, d // self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (t.view(B, S, h, dh).transpose(1, 2) for t in (q, k, v))  # (B, H, S, dh)
        if past is not None:
            k = torch.cat([past[0], k], 2)
            v = torch.cat([past[1], v], 2)
        L = k.shape[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(dh)  # (B, H, S, L)
        causal = torch.ones(S, L, dtype=torch.bool).tril(L - S)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, S, d)
        x = x + self.c_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, (k, v)


class Gpt(nn.Module):
    def __init__(self, vocab, context, d, layers, heads):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx, past=None, start=0):
        B, S = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(start, start + S))
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if past is None else past[i])
            present.append(kv)
        return self.ln_f(x) @ self.wte.weight.T, present


def median_ms(fn, warmup, repeats, budget):
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() - start > budget:
            break
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--T", type=int, required=True)
    p.add_argument("--B", type=int, required=True)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-repeats", type=int, default=8)
    p.add_argument("--generate-repeats", type=int, default=3)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = Gpt(a.vocab, max(a.T, 128), a.d, a.layers, a.d // 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, a.vocab, (a.B, a.T))

    def step():
        logits, _ = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, a.vocab), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    train_ms = median_ms(step, 1, a.train_repeats, 60)
    prompt = torch.randint(0, a.vocab, (a.B, 8))

    @torch.no_grad()
    def gen():
        logits, past = model(prompt)
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        for t in range(a.new_tokens - 1):
            logits, past = model(nxt, past, start=8 + t)
            nxt = logits[:, -1].argmax(-1, keepdim=True)

    gen_ms = median_ms(gen, 1, a.generate_repeats, 30)
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "blasThreads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                      "trainMs": train_ms, "generateTokensPerSecond": a.B * a.new_tokens / gen_ms * 1000}))


if __name__ == "__main__":
    main()
