#!/usr/bin/env bash
# The GPU recipe: TatumFlow's small preset (~47M parameters, bf16) pretrained on the PiJAMA
# train split, then LoRA-adapted to Art Tatum, in one run of at most 9 minutes on one
# H200-class GPU; the result is exported as fp16 safetensors in shards of at most 15 MB
# (transports with a 16 MB per-file limit), with its model card.
#
#   bash scripts/gpu_recipe.sh PIJAMA_STORE TATUM_STORE OUT [PRETRAIN_SECONDS] [ADAPT_SECONDS]
#
# The stores come from `tatumflow prepare` (README: TatumFlow); OUT receives
# tatumflow_small_tatum/ (a checkpoint folder: load_model(OUT/tatumflow_small_tatum),
# `tatumflow generate --checkpoint ...`, `tatumflow scorecard --checkpoint ...`) and the
# run logs. Defaults: 390 s of pretraining and 90 s of adaptation, leaving room for
# start-up, evaluation and export inside 9 minutes. Needs a CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PIJAMA=${1:?PIJAMA_STORE}; TATUM=${2:?TATUM_STORE}; OUT=${3:?OUT}
PRE=${4:-390}; ADAPT=${5:-90}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu: a smoke run of the recipe without a GPU (set tiny PRE/ADAPT)
EXTRA=${EXTRA:-}         # more overrides for both phases, e.g. "train.batch_size=2 train.eval_batches=1"
RUNS=${RUNS:-/tmp/tatumflow_gpu_runs}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUNS"
[ "$DEVICE" = cpu ] || $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
TF="$PY -m tatumflow.cli.main"
$TF train --config configs/tatumflow_small.yaml --data "$PIJAMA" --out "$RUNS/small" \
  train.device="$DEVICE" train.max_seconds="$PRE" train.eval_every=500 train.save_every=500 $EXTRA 2>&1 | tr '\r' '\n' \
  | grep -v "^train:" | tee "$OUT/pretrain.log"
best() { if [ -d "$1/best" ]; then echo "$1/best"; else ls -d "$1"/step-* | tail -1; fi; }  # no eval yet: the last
$TF train --config configs/tatumflow_tatum_lora.yaml --data "$TATUM" --out "$RUNS/tatum" \
  finetune.base="$(best "$RUNS/small")" train.device="$DEVICE" train.max_seconds="$ADAPT" train.eval_every=200 \
  train.save_every=200 $EXTRA 2>&1 | tr '\r' '\n' | grep -v "^train:" | tee "$OUT/adapt.log"
$PY scripts/ship_model.py --name tatumflow_small_tatum --checkpoint "$(best "$RUNS/tatum")" \
  --phase "$RUNS/small" --phase "$RUNS/tatum" --out "$OUT/tatumflow_small_tatum" --max-shard-mb 15 \
  --command "bash scripts/gpu_recipe.sh PIJAMA_STORE TATUM_STORE OUT" \
  --summary "TatumFlow small (47M): PiJAMA train split, then Art Tatum (LoRA), trained on one GPU"
ls -la "$OUT/tatumflow_small_tatum"
