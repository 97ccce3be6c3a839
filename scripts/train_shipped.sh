#!/usr/bin/env bash
# Rebuild the generators shipped in the package (src/tatumflow/pretrained/weights/):
# tatumflow_tatum, transformer_tatum (TatumFlow's decoder alone, the plain baseline),
# control_tatum (that decoder with the control track and the pianist, count and tally
# controls: every mode by default) and music_rnn_tatum, each pretrained on the PiJAMA train split and
# adapted to Art Tatum's train albums, scored on the Art Tatum test album, then shipped
# with their model cards (scripts/ship_model.py).
#
#   bash scripts/train_shipped.sh [DATA_INDEX] [RUN_FOLDER]
#
# DATA_INDEX defaults to ../shared/data/pijama/index.csv, RUN_FOLDER to runs/shipped.
# One CPU thread per run (OMP_NUM_THREADS=1); about 5 h 50 min of one core (training 270 min, scorecards 85) on the
# 2-core machine the shipped models were trained on (the TatumFlow phases stop by
# wall time, so the step counts, recorded in the cards, depend on the hardware).
# Every phase resumes where it stopped: rerun the script after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/pijama/index.csv}
R=${2:-runs/shipped}
TF=${TF:-.venv/bin/tatumflow}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
mkdir -p "$R"

[ -f "$R/stores/pijama/manifest.json" ] || $TF prepare "$DATA" --out "$R/stores/pijama" --workers 2
[ -f "$R/stores/tatum/manifest.json" ] || $TF prepare "$DATA" --out "$R/stores/tatum" --workers 2 --where pianist="Art Tatum"


# --- TatumFlow (tiny preset, ~2M parameters) -------------------------------------------
# Phase 1: 3000 s on the PiJAMA train split (best by val loss). Longer hurts generation
# with this recipe: 12,104 steps gave Art Tatum val continuations P 0.12 / OA 0.70.
T1="$R/tatumflow_pijama"
[ -f "$T1/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny.yaml --data "$R/stores/pijama" --out "$T1" \
  train.max_steps=100000 train.max_seconds=3000 train.save_every=400 train.eval_every=400
# Phase 2: full fine-tuning on Art Tatum's train albums, 600 s.
T2="$R/tatumflow_tatum"
[ -f "$T2/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_tatum.yaml --data "$R/stores/tatum" \
  --out "$T2" finetune.base="$T1/best" train.max_steps=100000 train.max_seconds=600 \
  train.eval_every=150 train.save_every=150

# --- The plain causal transformer (TatumFlow decoder_only, 2M): the same data and budget -
P1="$R/transformer_pijama"
[ -f "$P1/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_plain.yaml --data "$R/stores/pijama" \
  --out "$P1" train.max_seconds=3000
P2="$R/transformer_tatum"
[ -f "$P2/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_plain_tatum.yaml --data "$R/stores/tatum" \
  --out "$P2" finetune.base="$P1/best" train.max_seconds=600 train.eval_every=150 train.save_every=150

# --- The control-track transformer (the plain one told each second's chroma and texture) ----
# It starts from the plain transformer's PiJAMA run; 1800 s more on PiJAMA, 600 s on Art Tatum.
C1="$R/control_pijama"
[ -f "$C1/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_control.yaml --data "$R/stores/pijama" \
  --out "$C1" finetune.base="$P1/best" train.max_seconds=1800
C2="$R/control_tatum"
[ -f "$C2/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_control_tatum.yaml --data "$R/stores/tatum" \
  --out "$C2" finetune.base="$C1/best" train.max_seconds=600
# ... then the pianist control: 1800 s on the whole PiJAMA train split, half the windows Art Tatum's,
# each told who plays (Art Tatum or another pianist), so interpolation can move from one to the other.
C3="$R/control_pianist"
[ -f "$C3/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_control_pianist.yaml --data "$R/stores/pijama" \
  --out "$C3" finetune.base="$C2/best" train.max_seconds=1800
# ... then the count control: 1800 s more on the same data, each token also told how many of its
# second's onsets are left to write, so the density played is the density asked.
C4="$R/control_count"
[ -f "$C4/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_control_count.yaml --data "$R/stores/pijama" \
  --out "$C4" finetune.base="$C3/best" train.max_seconds=1800
# ... then the tally control: 1800 s more, each token also told how many of its second's onset
# clusters are left to begin, the notes in the cluster sounding and the register the second's
# remaining onsets need, so the voicing and register played are the ones asked.
C5="$R/control_tally"
[ -f "$C5/sessions.json" ] || $TF train --resume --config configs/tatumflow_tiny_control_tally.yaml --data "$R/stores/pijama" \
  --out "$C5" finetune.base="$C4/best" train.max_seconds=1800

# --- Music RNN (option C + velocity + categorical time heads, 0.1M parameters) ---------
M1="$R/music_rnn_pijama"
[ -f "$M1/sessions.json" ] || $TF train --resume --config configs/music_rnn_pijama.yaml --data "$R/stores/pijama" --out "$M1"
M2="$R/music_rnn_tatum"
[ -f "$M2/sessions.json" ] || $TF train --resume --config configs/music_rnn_tatum_lora.yaml --data "$R/stores/tatum" \
  --out "$M2" finetune.base="$M1/best"

# --- Score on the Art Tatum val album (what recipes were chosen by) and the test album --
# (never used to train or select), then ship -----------------------------------------------
for split in val test; do
  CARD=(--data "$DATA" --where pianist="Art Tatum" --where split=$split --contrast-where split=$split)
  [ -f "$R/card_tatumflow_$split/scorecard.json" ] || $TF scorecard --checkpoint "$T2/best" "${CARD[@]}" \
    --baseline "$M2/best" --out "$R/card_tatumflow_$split"
  [ -f "$R/card_music_rnn_$split/scorecard.json" ] || $TF scorecard --checkpoint "$M2/best" "${CARD[@]}" \
    --out "$R/card_music_rnn_$split"
  [ -f "$R/card_transformer_$split/scorecard.json" ] || $TF scorecard --checkpoint "$P2/best" "${CARD[@]}" \
    --out "$R/card_transformer_$split"
  [ -f "$R/card_control_$split/scorecard.json" ] || $TF scorecard --checkpoint "$C5/best" "${CARD[@]}" \
    --out "$R/card_control_$split"
done
$PY scripts/ship_model.py --name tatumflow_tatum --checkpoint "$T2/best" --phase "$T1" --phase "$T2" \
  --scorecard "$R/card_tatumflow_test/scorecard.json" --val-scorecard "$R/card_tatumflow_val/scorecard.json" \
  --summary "TatumFlow tiny (2M): PiJAMA train split, then Art Tatum (full fine-tune); every mode"
$PY scripts/ship_model.py --name music_rnn_tatum --checkpoint "$M2/best" --phase "$M1" --phase "$M2" \
  --scorecard "$R/card_music_rnn_test/scorecard.json" --val-scorecard "$R/card_music_rnn_val/scorecard.json" \
  --summary "Music RNN option C (0.1M, velocity, sampled timing): PiJAMA train split, then Art Tatum (LoRA); realtime continuation"
$PY scripts/ship_model.py --name transformer_tatum --checkpoint "$P2/best" --phase "$P1" --phase "$P2" \
  --scorecard "$R/card_transformer_test/scorecard.json" --val-scorecard "$R/card_transformer_val/scorecard.json" \
  --summary "Plain causal transformer (2M; TatumFlow's decoder without latents, style or theory): PiJAMA train split, then Art Tatum (full fine-tune); continuation and unconditional"
$PY scripts/ship_model.py --name control_tatum --checkpoint "$C5/best" --phase "$P1" --phase "$C1" --phase "$C2" --phase "$C3" --phase "$C4" --phase "$C5" \
  --scorecard "$R/card_control_test/scorecard.json" --val-scorecard "$R/card_control_val/scorecard.json" \
  --summary "Control-track transformer (2M; the plain transformer told each second's chroma and texture, who plays, how many of the second's onsets and clusters are left to write and the register they need): PiJAMA train split, then Art Tatum (full fine-tune), then the pianist control (Art Tatum or another, PiJAMA train, half the windows Art Tatum's), then the count control and the tally control (the same data); every mode, the transforming ones through a control plan"
