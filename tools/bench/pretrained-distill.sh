#!/usr/bin/env bash
# What the README's worked example (docs/examples/distil-qwen2.5.json) costs on this machine:
# random-weight Hugging Face folders at the Qwen2.5-1.5B-Instruct and Qwen2.5-0.5B-Instruct shapes
# (written by transformers, bf16, with a Qwen-style tokenizer of 151,665 tokens and its chat
# template), a chat dataset, and `skd distill` on the example config for a few steps; prints the
# seconds per optimizer step and the peak memory of the process. The measured steps generate 32
# tokens per response with no gradient accumulation (the example: 128, and 4 micro-batches a step),
# and random weights make the teacher reject nearly every draft: the worst case of SKD, one teacher
# pass per generated token.
#   bash tools/bench/pretrained-distill.sh [STEPS=2] [FOLDER=/tmp/skd-pretrained-distill] [--set key=value ...]
# Further arguments go to `skd distill` as they are, e.g. --set 'student.options.lora={"rank":16,"alpha":32}'
# or --set teacher.options.dtype=float32 (the teacher, stored in bf16, is held in bf16 by default).
# WITH_3B=1 also writes a Qwen2.5-3B-Instruct-shaped folder (3.1B parameters, bf16): distil from it with
# --set teacher.options.path=$FOLDER/Qwen2.5-3B-Instruct (an absolute path: --set paths resolve from the working directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-2}
dir=${2:-/tmp/skd-pretrained-distill}
shift $(( $# < 2 ? $# : 2 ))
export SKD_EXTRA_ARGS
SKD_EXTRA_ARGS=$(printf '%s\0' "$@" | base64 -w0)
python=.venv/bin/python
reference=tools/reference/hf_reference.py
mkdir -p "$dir/my-data"
qwen='"vocab_size": 151936, "num_key_value_heads": 2, "rope_theta": 1000000.0, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6'
[ -f "$dir/tokenizer/.done" ] || { $python $reference tokenizer qwen2 "$dir/tokenizer" --vocab 151665 >/dev/null && touch "$dir/tokenizer/.done"; }
[ -f "$dir/Qwen2.5-0.5B-Instruct/.done" ] || { $python $reference model qwen2 "$dir/Qwen2.5-0.5B-Instruct" --tokenizer "$dir/tokenizer" --dtype bfloat16 --context 32768 \
  --shape "{$qwen, \"hidden_size\": 896, \"intermediate_size\": 4864, \"num_hidden_layers\": 24, \"num_attention_heads\": 14}" >/dev/null && touch "$dir/Qwen2.5-0.5B-Instruct/.done"; }
[ -f "$dir/Qwen2.5-1.5B-Instruct/.done" ] || { $python $reference model qwen2 "$dir/Qwen2.5-1.5B-Instruct" --tokenizer "$dir/tokenizer" --dtype bfloat16 --context 32768 --seed 1 \
  --shape "{$qwen, \"hidden_size\": 1536, \"intermediate_size\": 8960, \"num_hidden_layers\": 28, \"num_attention_heads\": 12}" >/dev/null && touch "$dir/Qwen2.5-1.5B-Instruct/.done"; }
if [ "${WITH_3B:-0}" = 1 ] && [ ! -f "$dir/Qwen2.5-3B-Instruct/.done" ]; then
  $python $reference model qwen2 "$dir/Qwen2.5-3B-Instruct" --tokenizer "$dir/tokenizer" --dtype bfloat16 --context 32768 --seed 2 \
    --shape "{$qwen, \"hidden_size\": 2048, \"intermediate_size\": 11008, \"num_hidden_layers\": 36, \"num_attention_heads\": 16}" >/dev/null && touch "$dir/Qwen2.5-3B-Instruct/.done"
fi
# A user's chat data: questions with short answers (the shape, not the content, sets the cost).
$python - "$dir/my-data" <<'PY'
import json, random, sys
random.seed(0)
words = "the of and to in a is that for it as with was on be by at this have from or an".split()
for split, n in (("train", 64), ("eval", 8), ("test", 8)):
    with open(f"{sys.argv[1]}/{split}.jsonl", "w") as f:
        for _ in range(n):
            q = " ".join(random.choice(words) for _ in range(40))
            a = " ".join(random.choice(words) for _ in range(60))
            f.write(json.dumps({"prompt": f"Summarise: {q}", "response": a}) + "\n")
PY
cp docs/examples/distil-qwen2.5.json "$dir/run.json"
rm -rf "$dir/runs"
# Peak memory of the distillation process (the child's maximum resident set, in GB).
$python - "$dir" "$steps" <<'PY'
import base64, json, os, resource, subprocess, sys, time
folder, steps = sys.argv[1], sys.argv[2]
extra = [a for a in base64.b64decode(os.environ.get("SKD_EXTRA_ARGS", "")).decode().split("\0") if a]
start = time.time()
run = subprocess.run(["node", "packages/cli/dist/main.js", "distill", f"{folder}/run.json", "--out", f"{folder}/runs/x", "--set", f"training.steps={steps}", "--set", "training.evalEvery=0", "--set", "training.testLimit=2", "--set", "training.checkpointEvery=0", "--set", "sampler.options.maxNewTokens=32", "--set", "training.gradientAccumulation=1", "--set", "training.maxNewTokens=32", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
if run.returncode != 0:
    sys.exit(run.stderr[-3000:])
steps_seen = [json.loads(l) for l in open(f"{folder}/runs/x/metrics.jsonl") if '"type":"step"' in l]
seconds = [s["seconds"] for s in steps_seen]
print(run.stderr.strip().splitlines()[0])
for s in steps_seen:
    sampler = s["sampler"]
    print(f"step {s['step']}: {s['seconds']:.1f} s, loss {s['loss']:.3f}, SKD acceptance {sampler.get('acceptanceRate', 0):.2f}, {sampler.get('teacherPassesPerToken', 0):.2f} teacher passes per token, {s['tokens']} tokens")
print(json.dumps({"secondsPerStep": sorted(seconds)[len(seconds) // 2], "peakRssGB": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6, "wallSeconds": time.time() - start}))
PY
