#!/usr/bin/env bash
# The GPU check of the step benchmark: every base-size case (CLIP-B/16 + DeBERTa-v3-base sizes, random weights,
# LoRA, bf16, batch 128) on one GPU, in under 5 minutes, with only torch, transformers, peft and accelerate installed
# (synib_hf is imported from this checkout; it needs neither datasets nor evaluate). Writes $OUT/bench_step_base.json.
# Then the VLM cases on a SmolVLM-500M-shaped random model (bf16, LoRA on the language model, batch 32): the plain SFT
# step with lean logits (the fair baseline; the full-logits step is timed too) against SynIB's image + text views as
# blocks (concatenated; lean logits), as packed rows sharing the clean prefix, with the image view dropped, and both.
# Writes $OUT/bench_step_vlm_base.json (VLM_FAMILY=qwen2_vl for Qwen2-VL-2B shapes, VLM_BATCH to change the batch).
# SIZE/BATCH/ROUNDS/STEPS override the defaults (the test suite runs it with SIZE=tiny on the CPU); PYTHON names the
# interpreter (default: python3 from PATH; the tests pass their own).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU visible"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" scripts/bench_step.py \
  --size "${SIZE:-base}" --batch "${BATCH:-128}" --bf16 --lora \
  --rounds "${ROUNDS:-2}" --steps "${STEPS:-5}" --output "$OUT/bench_step_${SIZE:-base}.json"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" scripts/bench_step.py \
  --size "${SIZE:-base}" --family "${VLM_FAMILY:-smolvlm}" --batch "${VLM_BATCH:-32}" --bf16 --lora \
  --cases vlm-concatenated vlm-shared-lean vlm-shared-prefix vlm-drop vlm-drop-shared \
  --rounds "${ROUNDS:-2}" --steps "${STEPS:-5}" --output "$OUT/bench_step_vlm_${SIZE:-base}.json"
