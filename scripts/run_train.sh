#!/usr/bin/env bash
# Single-device training.
# Usage: bash scripts/run_train.sh [DATA_PATH] [CONFIG_PATH] [DEVICE_TARGET] [EXTRA FLAGS...]
#   DATA_PATH      dataset folder (pix2pix: DATA_PATH/train/*.png with A|B side by side)
#   CONFIG_PATH    a recipe, e.g. configs/pix2pix_facades.yaml
#   DEVICE_TARGET  CPU, GPU or Ascend (default CPU)
# The log goes to runs/train_<recipe>.log as well as the terminal.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: bash scripts/run_train.sh [DATA_PATH] [CONFIG_PATH] [DEVICE_TARGET] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(cd "$1" 2>/dev/null && pwd)" || { echo "run_train.sh: dataset folder not found: $1" >&2; exit 2; }
CONFIG="$(cd "$(dirname "$2")" 2>/dev/null && pwd)/$(basename "$2")"
[ -f "$CONFIG" ] || { echo "run_train.sh: config not found: $2" >&2; exit 2; }
TARGET="${3:-CPU}"
shift $(( $# < 3 ? $# : 3 ))
cd "$ROOT"
mkdir -p runs
LOG="runs/train_$(basename "$CONFIG" .yaml).log"
python train.py --config_path "$CONFIG" --dataroot "$DATA" --device_target "$TARGET" "$@" 2>&1 | tee "$LOG"
