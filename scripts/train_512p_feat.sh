#!/usr/bin/env bash
# pix2pixHD training, 1024x512 with encoded instance features (seed 002 train_512p_feat.sh).
# Usage: bash scripts/train_512p_feat.sh [DATASET_PATH] [EXTRA FLAGS...]
#   DATASET_PATH  pix2pixHD layout (train_label/, train_inst/, train_img/), made by
#                 python data/prepare_cityscapes.py --cityscapes_dir CITYSCAPES --output_dir DATASET_PATH --layout pix2pixhd
#   EXTRA FLAGS   any --key value, e.g. --vgg_pre_trained vgg19.ckpt, --no_vgg_loss True, --device_target GPU
# Afterwards: python precompute_feature_maps.py --ckpt runs/pix2pixhd_512p_feat/E_latest.ckpt --dataroot DATASET_PATH
#   (feature clusters for eval_512p_feat.sh, and DATASET_PATH/train_feat/ for train_1024p_feat.sh)
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "Usage: bash scripts/train_512p_feat.sh [DATASET_PATH] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "$1" 2>/dev/null && pwd)" || { echo "train_512p_feat.sh: dataset folder not found: $1" >&2; exit 2; }
shift
cd "$ROOT"
mkdir -p runs
python train.py --config_path configs/pix2pixhd_512p_feat.yaml --dataroot "$DATA" "$@" 2>&1 | tee "runs/train_pix2pixhd_512p_feat.log"
