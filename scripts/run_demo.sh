#!/usr/bin/env bash
# The built-in demo, nothing downloaded: synthetic street scenes -> pix2pix (labels -> photo) on the CPU -> eval report.
# Usage: bash scripts/run_demo.sh [OUTPUT_DIR] [MAX_STEPS]
#   OUTPUT_DIR  where data and the run go (default: ./demo)
#   MAX_STEPS   training steps (default: 1200, about 3 minutes on 2 CPU cores)
set -euo pipefail
if [ $# -gt 2 ]; then
  echo "Usage: bash scripts/run_demo.sh [OUTPUT_DIR] [MAX_STEPS]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-demo}" && cd "${1:-demo}" && pwd)"
STEPS="${2:-1200}"
PY="${PYTHON:-python}"
cd "$ROOT"
start=$(date +%s)

if [ ! -d "$OUT/data/pix2pix/train" ]; then
  echo "== 1/3 writing the synthetic street-scene dataset to $OUT/data"
  "$PY" -m src.dataset.demo --out "$OUT/data" --num_train 200 --num_val 30 --height 128 --width 256
else
  echo "== 1/3 dataset already in $OUT/data"
fi

RUN="$OUT/runs/pix2pix_demo"
echo "== 2/3 training pix2pix (colour labels -> photo, 128x128) for $STEPS steps"
if [ -f "$RUN/resume.ckpt" ]; then
  "$PY" train.py --outputs_dir "$OUT/runs" --name pix2pix_demo --continue_train True --max_steps "$STEPS"
else
  "$PY" train.py --config_path configs/pix2pix_demo.yaml --dataroot "$OUT/data/pix2pix" \
    --outputs_dir "$OUT/runs" --name pix2pix_demo --max_steps "$STEPS"
fi

echo "== 3/3 translating the 30 held-out scenes"
"$PY" eval.py --ckpt "$RUN/G_latest.ckpt"
echo "demo finished in $(( $(date +%s) - start )) s: open $RUN/eval_test/index.html (loss plot: $RUN/loss_plot.png)"
