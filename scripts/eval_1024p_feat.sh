#!/usr/bin/env bash
# pix2pixHD evaluation, 2048x1024 with features (seed 002 eval_1024p_feat.sh): translates DATASET_PATH/test_label (+ test_inst) with the run's G.
# Features are sampled from the clusters of the 512p_feat run (its encoder made the features this run trained on;
# precompute_feature_maps.py wrote runs/pix2pixhd_512p_feat/features_clustered_010.npy). --use_encoded_image True
# reads DATASET_PATH/test_feat/ instead: precompute_feature_maps.py --ckpt runs/pix2pixhd_512p_feat/E_latest.ckpt
# --dataroot DATASET_PATH --phase test.
# Usage: bash scripts/eval_1024p_feat.sh [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]
#   CKPT_PATH  generator checkpoint (default runs/pix2pixhd_1024p_feat/G_latest.ckpt)
#   EXTRA      e.g. --use_encoded_image True, --cluster_path FILE, --results_dir DIR
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "Usage: bash scripts/eval_1024p_feat.sh [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "$1" 2>/dev/null && pwd)" || { echo "eval_1024p_feat.sh: dataset folder not found: $1" >&2; exit 2; }
CKPT="${2:-runs/pix2pixhd_1024p_feat/G_latest.ckpt}"
shift $(( $# < 2 ? $# : 2 ))
if [ -f "$CKPT" ]; then
  CKPT="$(cd "$(dirname "$CKPT")" && pwd)/$(basename "$CKPT")"
elif [ "${CKPT#/}" = "$CKPT" ]; then
  CKPT="$ROOT/$CKPT"  # relative to the repository (the default run folders)
fi
cd "$ROOT"
python eval.py --ckpt "$CKPT" --dataroot "$DATA" "$@"
