#!/usr/bin/env bash
# pix2pixHD data-parallel training, 1024x512, labels + instance boundaries (recipe configs/pix2pixhd_512p.yaml);
# seed 002's distribute_train_512p.sh, on MindSpore's own launcher (msrun, through scripts/run_distribute_train.sh).
# Usage: bash scripts/distribute_train_512p.sh [DEVICE_NUM] [DISTRIBUTE] [DATASET_PATH] [EXTRA FLAGS...]
#   DEVICE_NUM    processes, one per device (seed 002: 8)
#   DISTRIBUTE    True: data parallel over DEVICE_NUM devices; False: one device (DEVICE_NUM must be 1)
#   DATASET_PATH  pix2pixHD layout (train_label/, train_inst/, train_img/), made by
#                 python data/prepare_cityscapes.py --cityscapes_dir CITYSCAPES --output_dir DATASET_PATH --layout pix2pixhd
#   EXTRA FLAGS   any --key value, e.g. --vgg_pre_trained vgg19.ckpt or --no_vgg_loss True
# Environment: DEVICE_TARGET (default Ascend; GPU or CPU), MASTER_PORT, LOG_DIR (default runs/msrun_logs_pix2pixhd_512p).
# batch_size is per device, so 8 devices train on 8 images per step (seed 002 did the same).
set -euo pipefail
NAME="distribute_train_512p.sh"
if [ $# -lt 3 ]; then
  echo "Usage: bash scripts/$NAME [DEVICE_NUM] [DISTRIBUTE] [DATASET_PATH] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NUM="$1"; DISTRIBUTE="$2"
case "$NUM" in ''|*[!0-9]*|0) echo "$NAME: DEVICE_NUM must be a positive integer, got '$NUM'" >&2; exit 2;; esac
[ -d "$3" ] || { echo "$NAME: dataset folder not found: $3" >&2; exit 2; }
DATA="$(cd "$3" && pwd)"
shift 3
TARGET="${DEVICE_TARGET:-Ascend}"
case "$DISTRIBUTE" in
  True|true)
    export LOG_DIR="${LOG_DIR:-$ROOT/runs/msrun_logs_pix2pixhd_512p}"
    exec bash "$ROOT/scripts/run_distribute_train.sh" "$NUM" pix2pixhd "$DATA" "$ROOT/configs/pix2pixhd_512p.yaml" \
      "$TARGET" "$@" ;;
  False|false)
    [ "$NUM" = "1" ] || { echo "$NAME: DISTRIBUTE False trains on one device; pass DEVICE_NUM 1, or DISTRIBUTE True for $NUM devices" >&2; exit 2; }
    exec bash "$ROOT/scripts/train_512p.sh" "$DATA" --device_target "$TARGET" "$@" ;;
  *)
    echo "$NAME: DISTRIBUTE must be True or False, got '$DISTRIBUTE'" >&2; exit 2 ;;
esac
