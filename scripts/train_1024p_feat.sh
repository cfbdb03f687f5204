#!/usr/bin/env bash
# pix2pixHD training, 2048x1024 with encoded instance features (seed 002 train_1024p_feat.sh; reference
# train_1024p_feat_24G.sh). As in the reference, the features are precomputed first with the 512p_feat run's encoder
# (DATASET_PATH/train_feat/, skipped when it exists; delete it to recompute) and the 1024p run trains no encoder.
# Usage: bash scripts/train_1024p_feat.sh [DATASET_PATH] [EXTRA FLAGS...]
#   DATASET_PATH  pix2pixHD layout (train_label/, train_inst/, train_img/), made by
#                 python data/prepare_cityscapes.py --cityscapes_dir CITYSCAPES --output_dir DATASET_PATH --layout pix2pixhd
#   EXTRA FLAGS   any --key value, e.g. --vgg_pre_trained vgg19.ckpt, --no_vgg_loss True, --device_target GPU
# Environment: E_CKPT (default runs/pix2pixhd_512p_feat/E_latest.ckpt), the encoder that makes the features.
# Needs runs/pix2pixhd_512p_feat (scripts/train_512p_feat.sh) first, or --load_pretrain OTHER_512P_FEAT_RUN and E_CKPT.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "Usage: bash scripts/train_1024p_feat.sh [DATASET_PATH] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "$1" 2>/dev/null && pwd)" || { echo "train_1024p_feat.sh: dataset folder not found: $1" >&2; exit 2; }
shift
cd "$ROOT"
E_CKPT="${E_CKPT:-runs/pix2pixhd_512p_feat/E_latest.ckpt}"
if [ ! -d "$DATA/train_feat" ] && [ ! -f "$E_CKPT" ]; then
  echo "train_1024p_feat.sh: encoder checkpoint $E_CKPT not found; train the 512p_feat run first (scripts/train_512p_feat.sh) or set E_CKPT" >&2
  exit 2
fi
mkdir -p runs
if [ ! -d "$DATA/train_feat" ]; then
  python precompute_feature_maps.py --ckpt "$E_CKPT" --dataroot "$DATA" 2>&1 | tee "runs/precompute_pix2pixhd_512p_feat.log"
fi
python train.py --config_path configs/pix2pixhd_1024p_feat.yaml --dataroot "$DATA" "$@" 2>&1 | tee "runs/train_pix2pixhd_1024p_feat.log"
