#!/usr/bin/env python3
"""Reads a Hugging Face GPT-2 folder (config.json + model.safetensors) the way GPT-2 defines it and
runs it in PyTorch, with the GPT of tools/bench/torch_gpt.py (written from the GPT-2 architecture,
not from skd's code): Conv1D weights ([in, out]) are transposed into nn.Linear ([out, in]).
Prints the logits of the token sequences given as JSON on stdin ([[ids...], ...]) as JSON.
Used by skd's export test, with PyTorch 2 from the reference environment:
.venv/bin/python tools/export/check_hf_gpt2.py FOLDER < sequences.json"""
import json, os, struct, sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from torch_gpt import Gpt  # noqa: E402

DTYPES = {"F32": torch.float32, "F16": torch.float16, "I32": torch.int32, "I64": torch.int64}


def read_safetensors(file):
    with open(file, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).to(torch.float32)
    return tensors


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "gpt2" and cfg.get("tie_word_embeddings", True), "the yardstick GPT has a tied head"
    assert cfg.get("n_inner") in (None, 4 * cfg["n_embd"]), "the yardstick GPT has an MLP of 4 * n_embd"
    assert abs(cfg.get("layer_norm_epsilon", 1e-5) - 1e-5) < 1e-12, "the yardstick GPT uses LayerNorm epsilon 1e-5"
    model = Gpt(cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"], cfg["n_head"])
    weights = {k.removeprefix("transformer."): v for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
    state = {"wte.weight": weights["wte.weight"], "wpe.weight": weights["wpe.weight"], "ln_f.weight": weights["ln_f.weight"], "ln_f.bias": weights["ln_f.bias"]}
    conv = {"attn.c_attn": "c_attn", "attn.c_proj": "c_proj", "mlp.c_fc": "c_fc", "mlp.c_proj": "mlp_proj"}
    for i in range(cfg["n_layer"]):
        for ln in ("ln_1", "ln_2"):
            for p in ("weight", "bias"):
                state[f"blocks.{i}.{ln}.{p}"] = weights[f"h.{i}.{ln}.{p}"]
        for hf, ours in conv.items():
            state[f"blocks.{i}.{ours}.weight"] = weights[f"h.{i}.{hf}.weight"].T.contiguous()
            state[f"blocks.{i}.{ours}.bias"] = weights[f"h.{i}.{hf}.bias"]
    model.load_state_dict(state, strict=True)
    model.eval()
    sequences = json.load(sys.stdin)
    with torch.no_grad():
        logits = [model(torch.tensor([s]))[0][0].tolist() for s in sequences]
    print(json.dumps(logits))


if __name__ == "__main__":
    main()
