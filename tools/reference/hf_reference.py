"""The reference client for skd's Hugging Face tests: transformers and tokenizers, from .venv.

Commands (JSON on stdin and stdout where they take data):
  tokenizer STYLE OUT            train a small tokenizer in a family's style (gpt2, qwen2, llama3,
                                 llama2, mistral (v0.3 Metaspace), tekken (Mistral NeMo), gemma; --vocab N grows a byte-level one to N tokens) and write tokenizer.json, tokenizer_config.json
                                 (with the family's chat template) and generation_config.json
  model FAMILY OUT --tokenizer D a random-initialised model of the family (gpt2, llama, qwen2, gemma,
                                 gemma2) at a tiny shape, saved by save_pretrained with D's tokenizer;
                                 --dtype float32|bfloat16|float16, --shard-bytes N (sharded),
                                 --shape JSON (config fields: a real model's sizes)
  logits DIR                     {"ids": [[...]], "mask": [[...]]} -> {"logits": [...]} (positions
                                 from the mask, as skd numbers them); --compute stored: in the
                                 checkpoint's own dtype (bf16/fp16) instead of float32 (also generate)
  generate DIR                   {"prompts": [[...]], "max_new_tokens": n} -> {"tokens": [[...]]},
                                 greedy, batched with left padding
  tokenize DIR                   {"texts": [...]} -> {"ids": [[...]], "decoded": [...]}
  chat DIR                       {"conversations": [[...]], "add_generation_prompt": b} -> {"texts": [...]}
Everything is seeded: the same command writes the same files.
"""

import argparse
import json
import os
import sys

import torch


CORPUS = """The quick brown fox jumps over the lazy dog. Tom has 12 apples and gives 5 to Mary; how many are left?
Answer: 7 apples. #### 7
def add(a, b):
    return a + b  # a tiny function
Distillation trains a small student on a large teacher's distributions.
Speculative decoding: the student drafts tokens and the teacher verifies them.
Café, naïve, résumé, Zürich, Ångström, São Paulo, Kraków.
Ελληνικά, русский язык, العربية, हिन्दी, 日本語のテキスト, 中文文本, 한국어 문장.
Emoji: 🙂 🚀 👍🏽 and symbols: ∑ ∫ √ ≤ ≥ ≠ € £ ¥ © ®.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 12345 3.14159 -42 1e-5 2026-12-04.
Whitespace:   three spaces, 	a tab, and
a newline; CamelCaseWords and snake_case_words; URLs like https://example.com/path?q=1.
It's, don't, we'll, they've, I'm, you're, she'd -- contractions and "quotes" and 'single quotes'.
""" * 3

QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# Mistral's Tekken split (tekken.json's config.pattern, as in Mistral NeMo and Small 3): GPT-4o's case-run
# word grammar without contractions, and digits one at a time.
TEKKEN_PATTERN = r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

TEMPLATES = {
    "qwen2": (
        "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
        "{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"
        "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    ),
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
        "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    "gemma": (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
        "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
    ),
    "llama2": (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
        "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
        "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}"
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
    ),
    # Mistral's [INST] framing (v0.3 and Tekken folders alike): no system role, the turns alternate.
    "mistral": (
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST]' + message['content'] + '[/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
    ),
    "gpt2": "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
}


def byte_level_tokenizer(style, out):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = {
        "gpt2": ["<|endoftext|>"],
        "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    }[style]
    tok = Tokenizer(models.BPE(ignore_merges=style == "llama3"))
    if style == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        pattern = QWEN_PATTERN if style == "qwen2" else LLAMA3_PATTERN
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
    if style == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=specials, show_progress=False)
    tok.train_from_iterator([CORPUS], trainer=trainer)
    if style == "llama3":
        tok.post_processor = processors.Sequence(
            [processors.ByteLevel(trim_offsets=False), processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.save(os.path.join(out, "tokenizer.json"))
    config = {
        "gpt2": {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "add_prefix_space": False},
        "qwen2": {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None, "errors": "replace"},
        "llama3": {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    }[style]
    eos = {"gpt2": ["<|endoftext|>"], "qwen2": ["<|im_end|>", "<|endoftext|>"], "llama3": ["<|end_of_text|>", "<|eot_id|>"]}[style]
    bos = {"gpt2": "<|endoftext|>", "qwen2": None, "llama3": "<|begin_of_text|>"}[style]
    return tok, config, eos, bos


def tekken_tokenizer(style, out):
    """Mistral's Tekken layout: a tiktoken-style tekken.json (byte ranks, specials in front) trained on the
    corpus, converted to tokenizer.json by transformers' own MistralConverter, with the BOS template the
    hub's NeMo folders carry. Both files are written, as on the hub."""
    import base64

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.integrations.mistral.tokenizer import MistralConverter

    trainee = Tokenizer(models.BPE())
    trainee.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(TEKKEN_PATTERN), behavior="isolated", invert=False), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    trainee.train_from_iterator([CORPUS], trainer=trainer)
    decode = {c: b for b, c in bytes_to_unicode().items()}
    learned = [bytes(decode[c] for c in token) for token, _ in sorted(trainee.get_vocab().items(), key=lambda kv: kv[1])]
    ranks = [bytes([b]) for b in range(256)] + [t for t in learned if len(t) > 1]
    specials = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]"]
    num_specials = 16  # the rest are <SPECIAL_i> fillers, as tekken.json's default_num_special_tokens asks
    tekken = {
        "config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": len(ranks), "default_vocab_size": len(ranks) + num_specials, "default_num_special_tokens": num_specials, "version": "v7"},
        "vocab": [{"rank": i, "token_bytes": base64.b64encode(t).decode(), "token_str": t.decode("utf-8", "replace")} for i, t in enumerate(ranks)],
        "special_tokens": [{"rank": i, "token_str": t, "is_control": True} for i, t in enumerate(specials)],
    }
    tekken_path = os.path.join(out, "tekken.json")
    with open(tekken_path, "w") as f:
        json.dump(tekken, f, ensure_ascii=False)
    tok = MistralConverter(tekken_path).converted()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B:1", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tok.save(os.path.join(out, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    return tok, config, ["</s>"], "<s>"


def sentencepiece_tokenizer(style, out):
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    specials = {"llama2": ["<unk>", "<s>", "</s>"], "mistral": ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"], "gemma": ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]}[style]
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if style in ("llama2", "mistral"):
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.normalizer = normalizers.Replace(" ", "▁")
    trainer = trainers.BpeTrainer(vocab_size=900, min_frequency=2, special_tokens=specials, show_progress=False, limit_alphabet=120)
    tok.train_from_iterator([CORPUS], trainer=trainer)
    doc = json.loads(tok.to_str())
    trained = sorted(doc["model"]["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for token in specials:
        vocab[token] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for token, _ in trained:
        if token not in vocab:
            vocab[token] = len(vocab)
    doc["model"]["vocab"] = vocab
    doc["added_tokens"] = [
        {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True} for t in specials
    ]
    steps = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]
    if style in ("llama2", "mistral"):
        steps.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    doc["decoder"] = {"type": "Sequence", "decoders": steps}
    if style == "mistral":
        # Mistral 7B v0.3's tokenizer.json: no normalizer; a Metaspace pre-tokenizer that marks only the
        # input's first word and never splits.
        doc["normalizer"] = None
        doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    tok = Tokenizer.from_str(json.dumps(doc))
    bos = "<bos>" if style == "gemma" else "<s>"
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, tok.token_to_id(bos))])
    tok.save(os.path.join(out, "tokenizer.json"))
    config = {
        "llama2": {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None, "add_bos_token": True, "add_eos_token": False, "legacy": False},
        "mistral": {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None, "add_bos_token": True, "add_eos_token": False, "legacy": False},
        "gemma": {"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>", "add_bos_token": True, "add_eos_token": False},
    }[style]
    eos = {"llama2": ["</s>"], "mistral": ["</s>"], "gemma": ["<eos>", "<end_of_turn>"]}[style]
    return tok, config, eos, bos


def grow_vocabulary(out, size):
    """Pads a byte-level BPE vocabulary to `size` tokens with further merges (a token and one more
    byte symbol), so timings see a real model's vocabulary width; text still tokenizes sensibly."""
    from tokenizers import Tokenizer

    path = os.path.join(out, "tokenizer.json")
    doc = json.load(open(path))
    vocab, merges = doc["model"]["vocab"], doc["model"]["merges"]
    added = {t["content"] for t in doc["added_tokens"]}
    symbols = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if len(t) == 1]
    bases = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in added]
    next_id = max(vocab.values()) + 1
    for base in bases:
        for symbol in symbols:
            if next_id >= size:
                break
            token = base + symbol
            if token in vocab:
                continue
            vocab[token] = next_id
            merges.append([base, symbol])
            next_id += 1
        if next_id >= size:
            break
    # Special tokens after the regular ones, as Qwen and Llama 3 place them.
    for t in doc["added_tokens"]:
        del vocab[t["content"]]
    ids = {t: i for i, t in enumerate(t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]))}
    for t in doc["added_tokens"]:
        t["id"] = len(ids)
        ids[t["content"]] = t["id"]
    doc["model"]["vocab"] = ids
    pp = doc.get("post_processor")
    for proc in (pp.get("processors", [pp]) if pp else []):
        for special in proc.get("special_tokens", {}).values():
            special["ids"] = [ids[t] for t in special["tokens"]]
    json.dump(doc, open(path, "w"), ensure_ascii=False)
    return Tokenizer.from_file(path)


def cmd_tokenizer(args):
    os.makedirs(args.out, exist_ok=True)
    build = byte_level_tokenizer if args.style in ("gpt2", "qwen2", "llama3") else tekken_tokenizer if args.style == "tekken" else sentencepiece_tokenizer
    tok, config, eos, bos = build(args.style, args.out)
    if args.vocab:
        if build is not byte_level_tokenizer:
            raise SystemExit("--vocab grows byte-level vocabularies only")
        tok = grow_vocabulary(args.out, args.vocab)
    config["chat_template"] = TEMPLATES["mistral" if args.style == "tekken" else args.style]
    config["model_max_length"] = 4096
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
    generation = {"bos_token_id": tok.token_to_id(bos) if bos else None, "eos_token_id": [tok.token_to_id(t) for t in eos]}
    if len(generation["eos_token_id"]) == 1:
        generation["eos_token_id"] = generation["eos_token_id"][0]
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
    json.dump({"vocab": tok.get_vocab_size(with_added_tokens=True)}, sys.stdout)


def family_config(family, vocab, context, shape=None):
    """The family's tiny test shape, or (shape: config fields) a real model's sizes."""
    from transformers import Gemma2Config, Gemma3TextConfig, GemmaConfig, GPT2Config, LlamaConfig, MistralConfig, Olmo2Config, Phi3Config, Qwen2Config, Qwen3Config

    shape = shape or {}
    if family == "gpt2":
        return GPT2Config(**{**dict(vocab_size=vocab, n_positions=context, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, tie_word_embeddings=True), **shape})
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context, rms_norm_eps=1e-6)
    if family == "llama":
        kwargs = dict(head_dim=16, tie_word_embeddings=False, attention_bias=True, mlp_bias=True, rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32})
        return LlamaConfig(**{**common, **kwargs, **shape})
    if family == "qwen2":
        # Qwen pads its embedding past the tokenizer: 5 ids without a token.
        return Qwen2Config(**{**common, "vocab_size": vocab + 5, "tie_word_embeddings": True, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, **shape})
    if family == "qwen3":
        # Per-head q/k norms, head_dim apart from hidden/heads (24, not 16), untied head, no biases.
        return Qwen3Config(**{**common, "head_dim": 24, "tie_word_embeddings": False, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, **shape})
    if family == "mistral":
        # A sliding window (5) shorter than the test sequences, on every layer, in training and in the cache.
        return MistralConfig(**{**common, "sliding_window": 5, "tie_word_embeddings": False, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, **shape})
    if family == "phi3":
        # Fused qkv_proj and gate_up_proj, and a sliding window (6) on every layer.
        return Phi3Config(**{**common, "sliding_window": 6, "tie_word_embeddings": False, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, "pad_token_id": None, **shape})
    if family == "olmo2":
        # Norms after attention and the MLP (none before), q/k norms over the whole projections.
        return Olmo2Config(**{**common, "tie_word_embeddings": False, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}, "pad_token_id": None, **shape})
    if family == "gemma":
        return GemmaConfig(**{**common, "head_dim": 24, "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": True, **shape})
    if family == "gemma2":
        kwargs = dict(head_dim=24, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=20, sliding_window=5, attn_logit_softcapping=5.0, final_logit_softcapping=10.0, tie_word_embeddings=True)
        return Gemma2Config(**{**common, **kwargs, **shape})
    if family == "gemma3":
        # Gemma 2's norms and scaled embeddings, per-head q/k norms, sliding and full layers by layer_types with
        # their own rope settings: the sliding layers' base 10000, the full layers' 1e6 with linear scaling.
        kwargs = dict(head_dim=24, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=20, sliding_window=5,
                      layer_types=["sliding_attention", "full_attention", "sliding_attention"], tie_word_embeddings=True,
                      rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                       "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0}})
        return Gemma3TextConfig(**{**common, **kwargs, **shape})
    raise SystemExit(f"unknown family {family}")


def cmd_model(args):
    from transformers import AutoModelForCausalLM, GenerationConfig

    torch.manual_seed(args.seed)
    with open(os.path.join(args.tokenizer, "tokenizer.json")) as f:
        tok = json.load(f)
    vocab = max([*tok["model"]["vocab"].values(), *(t["id"] for t in tok.get("added_tokens", []))]) + 1
    config = family_config(args.family, vocab, args.context, json.loads(args.shape))
    gen = json.load(open(os.path.join(args.tokenizer, "generation_config.json")))
    config.bos_token_id = gen.get("bos_token_id")
    config.eos_token_id = gen["eos_token_id"]
    model = AutoModelForCausalLM.from_config(config)
    # transformers' initialisation (std 0.02) gives near-uniform outputs; wider weights make every
    # position's distribution peaked and different, so comparisons and greedy paths mean something.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                embedding = "embed" in name or "wte" in name or "wpe" in name
                residual = "o_proj" in name or "down_proj" in name or "c_proj" in name
                p.normal_(0.0, (0.5 if embedding else 6.0 if residual else 1.5) / p.shape[-1] ** 0.5)
            elif "norm" in name or "ln_" in name:
                p.normal_(0.0 if args.family.startswith("gemma") else 1.0, 0.2)
            else:
                p.normal_(0.0, 0.1)
    model = model.to(getattr(torch, args.dtype))
    os.makedirs(args.out, exist_ok=True)
    kwargs = {"max_shard_size": args.shard_bytes} if args.shard_bytes else {}
    model.save_pretrained(args.out, safe_serialization=True, **kwargs)
    GenerationConfig(**{k: v for k, v in gen.items() if v is not None}).save_pretrained(args.out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(args.tokenizer, name)) as src, open(os.path.join(args.out, name), "w") as dst:
            dst.write(src.read())
    json.dump({"vocab": config.vocab_size, "parameters": sum(p.numel() for p in model.parameters())}, sys.stdout)


def load(dir, compute="float32"):
    """The model in float32 (whatever the checkpoint stores), or with compute "stored" in the dtype it is stored in."""
    from transformers import AutoConfig, AutoModelForCausalLM

    # Gemma 2 soft-caps its attention scores; transformers' default SDPA attention skips the cap,
    # and only its eager attention computes the architecture as defined.
    eager = AutoConfig.from_pretrained(dir).model_type == "gemma2"
    dtype = torch.float32 if compute == "float32" else "auto"
    model = AutoModelForCausalLM.from_pretrained(dir, dtype=dtype, **({"attn_implementation": "eager"} if eager else {}))
    model.eval()
    return model


def cmd_logits(args):
    request = json.load(sys.stdin)
    model = load(args.dir, args.compute)
    if getattr(args, "adapter", None):
        # A LoRA adapter folder (skd export --adapter) loaded by PEFT onto the base model.
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter)
        model.eval()
    ids = torch.tensor(request["ids"])
    mask = torch.tensor(request["mask"])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float()
    json.dump({"logits": logits.tolist()}, sys.stdout)


def cmd_rope(args):
    """transformers' inverse frequencies and attention factor for {family, fields} on stdin (its rope init functions)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    request = json.load(sys.stdin)
    config = family_config(request["family"], 100, request.get("context", 128), request["fields"])
    rope_type = config.rope_parameters["rope_type"]
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS[rope_type](config, None, seq_len=request.get("seq_len"))
    json.dump({"invFreq": inv_freq.tolist(), "attentionFactor": attention_factor}, sys.stdout)


def cmd_generate(args):
    request = json.load(sys.stdin)
    model = load(args.dir, args.compute)
    prompts = request["prompts"]
    pad = request.get("pad", 0)
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=request["max_new_tokens"], do_sample=False, pad_token_id=pad)
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    tokens = []
    for row in out[:, width:].tolist():
        kept = []
        for t in row:
            kept.append(t)
            if t in eos:
                break
        tokens.append(kept)
    json.dump({"tokens": tokens}, sys.stdout)


def cmd_tokenize(args):
    from transformers import AutoTokenizer

    request = json.load(sys.stdin)
    tok = AutoTokenizer.from_pretrained(args.dir)
    ids = [tok(text)["input_ids"] for text in request["texts"]]
    decoded = [tok.decode(row, skip_special_tokens=True) for row in ids]
    json.dump({"ids": ids, "decoded": decoded, "class": type(tok).__name__}, sys.stdout, ensure_ascii=False)


def cmd_chat(args):
    from transformers import AutoTokenizer

    request = json.load(sys.stdin)
    tok = AutoTokenizer.from_pretrained(args.dir)
    texts = []
    for conversation in request["conversations"]:
        try:
            texts.append(tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=request.get("add_generation_prompt", False)))
        except Exception as error:  # the template's raise_exception
            texts.append({"error": str(error)})
    json.dump({"texts": texts}, sys.stdout, ensure_ascii=False)


def cmd_sacrebleu(args):
    from sacrebleu.metrics import BLEU, CHRF

    request = json.load(sys.stdin)
    hyps, refs = request["hypotheses"], request["references"]
    out = {
        "version": __import__("sacrebleu").__version__,
        "bleu": BLEU().corpus_score(hyps, [refs]).score,
        "chrf": CHRF().corpus_score(hyps, [refs]).score,
        "chrfpp": CHRF(word_order=2).corpus_score(hyps, [refs]).score,
        "sentenceChrf": [CHRF().sentence_score(h, [r]).score for h, r in zip(hyps, refs)],
    }
    json.dump(out, sys.stdout)


def cmd_minillm(args):
    """TRL's MiniLLM loss on given logits: the reverse-KL advantage and the single-step term as
    MiniLLMTrainer computes them (its own methods, called on a stand-in for the trainer), and the
    policy term as GRPO's loss is on-policy (importance ratio 1, no reward function)."""
    from types import SimpleNamespace

    import torch.nn.functional as F

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.minillm.minillm_trainer import MiniLLMTrainer

    request = json.load(sys.stdin)
    t = request.get("temperature", 1.0)
    student = torch.tensor(request["student"], dtype=torch.float64) / t
    teacher = torch.tensor(request["teacher"], dtype=torch.float64) / t
    labels = torch.tensor(request["labels"], dtype=torch.long)
    mask = torch.tensor(request["mask"], dtype=torch.bool)
    trainer = SimpleNamespace(gamma=request["gamma"], length_normalization=request["lengthNormalization"])
    s_logp = F.log_softmax(student, dim=-1)
    t_logp = F.log_softmax(teacher, dim=-1)
    s_on = torch.gather(s_logp, -1, labels.unsqueeze(-1)).squeeze(-1)
    t_on = torch.gather(t_logp, -1, labels.unsqueeze(-1)).squeeze(-1)
    advantages = MiniLLMTrainer._compute_advantage(trainer, s_on, t_on, mask)
    single = MiniLLMTrainer._single_step_decomposition_loss(trainer, s_logp, t_logp, mask)
    policy = -(advantages * mask).sum() / mask.sum()
    json.dump({"advantages": advantages.tolist(), "singleStep": single.item(), "policy": policy.item(), "loss": (policy + single).item()}, sys.stdout)


def cmd_uld(args):
    """TRL GOLD's ULDLoss (distillation part) on given logits, labels, token ids and byte offsets:
    its own _compute_distillation_loss, on a stand-in config, the hybrid's vocabulary match given."""
    from types import SimpleNamespace

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.gold.gold_trainer import ULDLoss

    r = json.load(sys.stdin)
    hybrid = r.get("hybrid")
    config = SimpleNamespace(
        uld_crossentropy_weight=0.0,
        uld_distillation_weight=1.0,
        uld_student_temperature=r["studentTemperature"],
        uld_teacher_temperature=r["teacherTemperature"],
        uld_skip_student_eos=False,
        uld_skip_teacher_eos=False,
        use_extended_uld=r["extended"],
        uld_token_merge_strategy=r["merge"],
        uld_use_hybrid_loss=hybrid is not None,
        uld_hybrid_matched_weight=hybrid.get("matchedWeight") if hybrid else None,
        uld_hybrid_unmatched_weight=hybrid.get("unmatchedWeight") if hybrid else None,
        beta=hybrid["beta"] if hybrid else 1.0,
    )
    loss = ULDLoss(config)
    if hybrid:
        mapping = dict(zip(hybrid["teacherIds"], hybrid["studentIds"]))
        loss._vocab_mapping = mapping
        loss._teacher_matched_ids = set(mapping)
        loss._student_matched_ids = set(mapping.values())
        loss.mapping_tensor = torch.full((max(mapping) + 1,), -1, dtype=torch.long)
        for k, v in mapping.items():
            loss.mapping_tensor[k] = v
    t = lambda key, dtype=torch.float64: torch.tensor(r[key], dtype=dtype)  # noqa: E731
    value = loss(
        t("studentLogits"),
        t("teacherLogits"),
        t("studentLabels", torch.long),
        t("teacherLabels", torch.long),
        t("studentIds", torch.long),
        t("teacherIds", torch.long),
        student_byte_offsets=t("studentOffsets", torch.long),
        teacher_byte_offsets=t("teacherOffsets", torch.long),
    )
    json.dump({"loss": float(value)}, sys.stdout)


def cmd_byte_offsets(args):
    """TRL's encode_with_byte_offsets (what GOLD aligns by) of {texts} with the folder's tokenizer."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import AutoTokenizer
    from trl.experimental.utils import encode_with_byte_offsets

    r = json.load(sys.stdin)
    tok = AutoTokenizer.from_pretrained(args.dir)
    encoded = encode_with_byte_offsets(tok.backend_tokenizer, r["texts"], add_special_tokens=False)
    json.dump({"ids": [ids for ids, _ in encoded], "offsets": [[list(o) for o in offsets] for _, offsets in encoded]}, sys.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("tokenizer")
    p.add_argument("style", choices=["gpt2", "qwen2", "llama3", "llama2", "mistral", "tekken", "gemma"])
    p.add_argument("out")
    p.add_argument("--vocab", type=int, default=0, help="grow the vocabulary to this many tokens (byte-level styles)")
    p.set_defaults(run=cmd_tokenizer)
    p = sub.add_parser("model")
    p.add_argument("family", choices=["gpt2", "llama", "qwen2", "qwen3", "mistral", "phi3", "olmo2", "gemma", "gemma2", "gemma3"])
    p.add_argument("out")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--shard-bytes", type=int, default=0)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shape", default="{}", help="config fields to set (JSON), e.g. a real model's sizes")
    p.set_defaults(run=cmd_model)
    p = sub.add_parser("rope", help="transformers' rotary frequencies of {family, fields} on stdin")
    p.set_defaults(run=cmd_rope)
    p = sub.add_parser("sacrebleu", help="corpus BLEU, chrF and chrF++ (sacreBLEU defaults) of {hypotheses, references} on stdin")
    p.set_defaults(run=cmd_sacrebleu)
    p = sub.add_parser("uld", help="TRL GOLD ULDLoss's distillation loss of {logits, labels, ids, byte offsets, options} on stdin")
    p.set_defaults(run=cmd_uld)
    p = sub.add_parser("minillm", help="TRL MiniLLMTrainer's loss of {student, teacher, labels, mask, gamma, lengthNormalization, temperature} on stdin")
    p.set_defaults(run=cmd_minillm)
    for name, run in (("logits", cmd_logits), ("generate", cmd_generate), ("tokenize", cmd_tokenize), ("chat", cmd_chat), ("byte-offsets", cmd_byte_offsets)):
        p = sub.add_parser(name)
        p.add_argument("dir")
        if name == "logits":
            p.add_argument("--adapter", help="a PEFT adapter folder to load onto the model")
        if name in ("logits", "generate"):
            p.add_argument("--compute", default="float32", choices=["float32", "stored"], help="compute in float32, or in the dtype the weights are stored in")
        p.set_defaults(run=run)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.run(args)


if __name__ == "__main__":
    main()
