#!/usr/bin/env bash
# The pix2pixHD recipes (configs/pix2pixhd_RECIPE.yaml, run folder runs/pix2pixhd_RECIPE), behind seed 002's script
# names: train_512p.sh, train_512p_feat.sh, train_1024p.sh, train_1024p_feat.sh, eval_*.sh, distribute_train_512p*.sh.
# Usage: bash scripts/pix2pixhd.sh train      RECIPE [DATASET_PATH] [EXTRA FLAGS...]
#        bash scripts/pix2pixhd.sh eval       RECIPE [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]
#        bash scripts/pix2pixhd.sh distribute RECIPE [DEVICE_NUM] [DISTRIBUTE] [DATASET_PATH] [EXTRA FLAGS...]
#   RECIPE        512p, 512p_feat, 1024p or 1024p_feat
#   DATASET_PATH  pix2pixHD layout (train_label/, train_inst/, train_img/; test_* for eval), made by
#                 python data/prepare_cityscapes.py --cityscapes_dir CITYSCAPES --output_dir DATASET_PATH --layout pix2pixhd
#   CKPT_PATH     eval: generator checkpoint (default runs/pix2pixhd_RECIPE/G_latest.ckpt)
#   DEVICE_NUM    distribute: processes, one per device (seed 002: 8)
#   DISTRIBUTE    distribute: True, data parallel over DEVICE_NUM devices (msrun, scripts/run_distribute_train.sh);
#                 False, one device (DEVICE_NUM must be 1)
#   EXTRA FLAGS   any --key value, e.g. --vgg_pre_trained vgg19.ckpt, --no_vgg_loss True, --device_target GPU
# Environment: train 1024p_feat: E_CKPT (default runs/pix2pixhd_512p_feat/E_latest.ckpt), the encoder whose
#   precomputed features (DATASET_PATH/train_feat/, made first when missing; delete it to recompute) the run trains
#   on, as the reference's train_1024p_feat_24G.sh. distribute: DEVICE_TARGET (default Ascend; GPU or CPU),
#   MASTER_PORT, LOG_DIR (default runs/msrun_logs_pix2pixhd_RECIPE); batch_size is per device.
set -euo pipefail
ACTION="${1:-}"; RECIPE="${2:-}"
NAME="${SCRIPT_NAME:-pix2pixhd.sh $ACTION $RECIPE}"   # the seed-named wrapper that called us, for messages
case "$RECIPE" in 512p|512p_feat|1024p|1024p_feat) ;;
  *) echo "pix2pixhd.sh: RECIPE must be 512p, 512p_feat, 1024p or 1024p_feat, got '$RECIPE'" >&2; exit 2 ;;
esac
shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="configs/pix2pixhd_$RECIPE.yaml"

usage() { echo "Usage: bash scripts/$NAME $1" >&2; exit 2; }
dataset() { (cd "$1" 2>/dev/null && pwd) || { echo "$NAME: dataset folder not found: $1" >&2; exit 2; }; }

case "$ACTION" in
  train)
    [ $# -ge 1 ] || usage "[DATASET_PATH] [EXTRA FLAGS...]"
    DATA="$(dataset "$1")"; shift
    cd "$ROOT"
    mkdir -p runs
    if [ "$RECIPE" = "1024p_feat" ] && [ ! -d "$DATA/train_feat" ]; then
      E_CKPT="${E_CKPT:-runs/pix2pixhd_512p_feat/E_latest.ckpt}"
      if [ ! -f "$E_CKPT" ]; then
        echo "$NAME: encoder checkpoint $E_CKPT not found; train the 512p_feat run first (scripts/train_512p_feat.sh) or set E_CKPT" >&2
        exit 2
      fi
      python precompute_feature_maps.py --ckpt "$E_CKPT" --dataroot "$DATA" 2>&1 | tee "runs/precompute_pix2pixhd_512p_feat.log"
    fi
    python train.py --config_path "$CONFIG" --dataroot "$DATA" "$@" 2>&1 | tee "runs/train_pix2pixhd_$RECIPE.log" ;;
  eval)
    [ $# -ge 1 ] || usage "[DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]"
    DATA="$(dataset "$1")"
    CKPT="${2:-runs/pix2pixhd_$RECIPE/G_latest.ckpt}"
    shift $(( $# < 2 ? $# : 2 ))
    if [ -f "$CKPT" ]; then
      CKPT="$(cd "$(dirname "$CKPT")" && pwd)/$(basename "$CKPT")"
    elif [ "${CKPT#/}" = "$CKPT" ]; then
      CKPT="$ROOT/$CKPT"  # relative to the repository (the default run folders)
    fi
    cd "$ROOT"
    python eval.py --ckpt "$CKPT" --dataroot "$DATA" "$@" ;;
  distribute)
    [ $# -ge 3 ] || usage "[DEVICE_NUM] [DISTRIBUTE] [DATASET_PATH] [EXTRA FLAGS...]"
    NUM="$1"; DISTRIBUTE="$2"
    case "$NUM" in ''|*[!0-9]*|0) echo "$NAME: DEVICE_NUM must be a positive integer, got '$NUM'" >&2; exit 2;; esac
    DATA="$(dataset "$3")"
    shift 3
    TARGET="${DEVICE_TARGET:-Ascend}"
    case "$DISTRIBUTE" in
      True|true)
        export LOG_DIR="${LOG_DIR:-$ROOT/runs/msrun_logs_pix2pixhd_$RECIPE}"
        exec bash "$ROOT/scripts/run_distribute_train.sh" "$NUM" pix2pixhd "$DATA" "$ROOT/$CONFIG" "$TARGET" "$@" ;;
      False|false)
        [ "$NUM" = "1" ] || { echo "$NAME: DISTRIBUTE False trains on one device; pass DEVICE_NUM 1, or DISTRIBUTE True for $NUM devices" >&2; exit 2; }
        SCRIPT_NAME="train_$RECIPE.sh" exec bash "$ROOT/scripts/pix2pixhd.sh" train "$RECIPE" "$DATA" --device_target "$TARGET" "$@" ;;
      *)
        echo "$NAME: DISTRIBUTE must be True or False, got '$DISTRIBUTE'" >&2; exit 2 ;;
    esac ;;
  *)
    echo "Usage: bash scripts/pix2pixhd.sh train|eval|distribute RECIPE ...; got '$ACTION'" >&2; exit 2 ;;
esac
