#!/usr/bin/env bash
# Single-device training.
# Usage: bash scripts/run_standalone_train.sh [MODEL] [DEVICE_TARGET] [DEVICE_ID] [DATA_PATH] [CONFIG_PATH] [EXTRA FLAGS...]
#   CONFIG_PATH "-" for none. The log is written to runs/train_<MODEL>.log as well as the terminal.
set -euo pipefail
usage="Usage: bash scripts/run_standalone_train.sh [MODEL] [DEVICE_TARGET] [DEVICE_ID] [DATA_PATH] [CONFIG_PATH] [EXTRA FLAGS...]"
if [ $# -lt 5 ]; then echo "$usage" >&2; exit 2; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL="$1"; TARGET="$2"; DEVICE_ID="$3"
case "$TARGET" in Ascend|GPU|CPU) ;; *) echo "run_standalone_train.sh: DEVICE_TARGET must be Ascend, GPU or CPU, got '$TARGET'" >&2; exit 2;; esac
case "$DEVICE_ID" in ''|*[!0-9]*) echo "run_standalone_train.sh: DEVICE_ID must be an integer >= 0, got '$DEVICE_ID'" >&2; exit 2;; esac
DATA="$(cd "$4" 2>/dev/null && pwd)" || { echo "run_standalone_train.sh: dataset folder not found: $4" >&2; exit 2; }
CONFIG_ARGS=()
if [ "$5" != "-" ]; then
  [ -f "$5" ] || { echo "run_standalone_train.sh: config not found: $5" >&2; exit 2; }
  CONFIG_ARGS=(--config_path "$(cd "$(dirname "$5")" && pwd)/$(basename "$5")")
fi
shift 5
cd "$ROOT"
mkdir -p runs
python train.py --model "$MODEL" --device_target "$TARGET" --device_id "$DEVICE_ID" --dataroot "$DATA" \
  "${CONFIG_ARGS[@]}" "$@" 2>&1 | tee "runs/train_$MODEL.log"
