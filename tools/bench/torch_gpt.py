#!/usr/bin/env python3
"""PyTorch 2 CPU yardstick: the same GPT as packages/models (pre-LayerNorm, tanh-GELU, learned
positions, tied head), the same training step (Adam 1e-3 with foreach, cross-entropy on next tokens)
and the same greedy generation with a KV cache, attention by torch's scaled_dot_product_attention
(SDPA), as PyTorch 2 runs it at its best. Prints one JSON line. tools/bench/run.cjs runs it from
.venv (PyTorch 2 from the machine's wheel store, made by tools/setup.sh) at every thread count and
compares skd with the fastest."""
import argparse, json, time
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
        # A full sequence is causal; one new token attends to every cached position.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=past is None)
        y = y.transpose(1, 2).reshape(B, S, d)
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
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
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
    print(json.dumps({"torch": torch.__version__, "threads": a.threads,
                      "trainMs": train_ms, "generateTokensPerSecond": a.B * a.new_tokens / gen_ms * 1000}))


if __name__ == "__main__":
    main()
