#!/usr/bin/env bash
# Data-parallel training with MindSpore's own launcher (msrun), on Ascend, GPU or CPU.
# Usage: bash scripts/run_distribute_train.sh [DEVICE_NUM] [MODEL] [DATA_PATH] [CONFIG_PATH] [DEVICE_TARGET] [EXTRA FLAGS...]
#   DEVICE_NUM     processes (one per device), e.g. 8
#   MODEL          pix2pix, cyclegan or pix2pixhd
#   DATA_PATH      dataset folder
#   CONFIG_PATH    recipe, e.g. configs/pix2pix_facades.yaml ("-" for none)
#   DEVICE_TARGET  Ascend (default), GPU or CPU
# Environment: MASTER_PORT (default 8118), LOG_DIR (default runs/msrun_logs_<MODEL>).
# Each rank trains on its own shard with batch_size images; gradients are averaged over ranks; rank 0 writes the run.
set -euo pipefail
usage="Usage: bash scripts/run_distribute_train.sh [DEVICE_NUM] [MODEL] [DATA_PATH] [CONFIG_PATH] [DEVICE_TARGET] [EXTRA FLAGS...]"
if [ $# -lt 4 ]; then echo "$usage" >&2; exit 2; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NUM="$1"; MODEL="$2"
case "$NUM" in ''|*[!0-9]*|0) echo "run_distribute_train.sh: DEVICE_NUM must be a positive integer, got '$NUM'" >&2; exit 2;; esac
DATA="$(cd "$3" 2>/dev/null && pwd)" || { echo "run_distribute_train.sh: dataset folder not found: $3" >&2; exit 2; }
CONFIG_ARGS=()
if [ "$4" != "-" ]; then
  [ -f "$4" ] || { echo "run_distribute_train.sh: config not found: $4" >&2; exit 2; }
  CONFIG_ARGS=(--config_path "$(cd "$(dirname "$4")" && pwd)/$(basename "$4")")
fi
TARGET="${5:-Ascend}"
shift $(( $# < 5 ? $# : 5 ))
PORT="${MASTER_PORT:-8118}"
cd "$ROOT"
PY="$(command -v python || command -v python3)"
"$PY" - "$PORT" <<'PYEOF' || exit 2
import socket, sys
port = int(sys.argv[1])
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        print(f"run_distribute_train.sh: master port {port} is busy; set MASTER_PORT to a free port", file=sys.stderr)
        sys.exit(1)
PYEOF
if [ "$TARGET" = "GPU" ] && command -v nvidia-smi >/dev/null 2>&1; then
  VISIBLE=$(nvidia-smi -L | wc -l)
  if [ "$VISIBLE" -lt "$NUM" ]; then
    echo "run_distribute_train.sh: $NUM processes requested but only $VISIBLE GPUs are visible" >&2; exit 2
  fi
fi
LOG_DIR="${LOG_DIR:-$ROOT/runs/msrun_logs_$MODEL}"
mkdir -p "$LOG_DIR"
echo "launching $NUM $TARGET workers (logs: $LOG_DIR/worker_*.log)"
if ! msrun --worker_num="$NUM" --local_worker_num="$NUM" --master_addr=127.0.0.1 --master_port="$PORT" \
     --log_dir="$LOG_DIR" --join=True \
     train.py --model "$MODEL" --dataroot "$DATA" "${CONFIG_ARGS[@]}" --device_target "$TARGET" \
     --run_distribute True "$@" > "$LOG_DIR/msrun.log" 2>&1; then
  reason=$(grep -h "^error: " "$LOG_DIR"/worker_*.log 2>/dev/null | head -n 1 || true)
  [ -n "$reason" ] || reason=$(grep -hE "Error|error" "$LOG_DIR"/worker_*.log "$LOG_DIR"/scheduler.log 2>/dev/null \
                                 | grep -v WARNING | grep -E "^[A-Za-z_.]*(Error|Exception): " | head -n 1 || true)
  echo "run_distribute_train.sh: a worker failed: ${reason:-see $LOG_DIR}" >&2
  exit 1
fi
grep -h "end of epoch\|max_steps reached\|parameter checksum" "$LOG_DIR/worker_0.log" | tail -n 3
echo "done: logs in $LOG_DIR"
