#!/usr/bin/env bash
# Data-parallel training on the GPUs of one machine, launched with OpenMPI's mpirun (NCCL between the ranks).
# Usage: bash scripts/run_distribute_train_gpu.sh [DEVICE_NUM] [MODEL] [DATA_PATH] [CONFIG_PATH] [EXTRA FLAGS...]
#   DEVICE_NUM   processes, one per GPU (at most the number of visible GPUs)
#   MODEL        pix2pix, cyclegan or pix2pixhd
#   DATA_PATH    dataset folder
#   CONFIG_PATH  recipe, e.g. configs/pix2pix_facades.yaml ("-" for none)
# Environment: LOG_DIR (default runs/mpirun_logs_<MODEL>), DRY_RUN=1 prints the mpirun command and exits.
# Each rank takes its GPU from OpenMPI's local rank (OMPI_COMM_WORLD_LOCAL_RANK, see src/device.py). mpirun's own
# output goes to LOG_DIR/mpirun.log and each rank's to LOG_DIR/ranks/ (OpenMPI --output-filename). Without OpenMPI,
# use scripts/run_distribute_train.sh (msrun), which MindSpore recommends and which needs nothing else.
set -euo pipefail
NAME="run_distribute_train_gpu.sh"
usage="Usage: bash scripts/$NAME [DEVICE_NUM] [MODEL] [DATA_PATH] [CONFIG_PATH] [EXTRA FLAGS...]"
if [ $# -lt 4 ]; then echo "$usage" >&2; exit 2; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NUM="$1"; MODEL="$2"
case "$NUM" in ''|*[!0-9]*|0) echo "$NAME: DEVICE_NUM must be a positive integer, got '$NUM'" >&2; exit 2;; esac
DATA="$(cd "$3" 2>/dev/null && pwd)" || { echo "$NAME: dataset folder not found: $3" >&2; exit 2; }
CONFIG_ARGS=()
if [ "$4" != "-" ]; then
  [ -f "$4" ] || { echo "$NAME: config not found: $4" >&2; exit 2; }
  CONFIG_ARGS=(--config_path "$(cd "$(dirname "$4")" && pwd)/$(basename "$4")")
fi
shift 4
PY="$(command -v python || command -v python3)" || { echo "$NAME: python not found on PATH" >&2; exit 2; }
LOG_DIR="${LOG_DIR:-$ROOT/runs/mpirun_logs_$MODEL}"
CMD=(mpirun -n "$NUM" --allow-run-as-root --output-filename "$LOG_DIR/ranks" --merge-stderr-to-stdout
     "$PY" train.py --model "$MODEL" --dataroot "$DATA" "${CONFIG_ARGS[@]}" --device_target GPU
     --run_distribute True "$@")
if [ "${DRY_RUN:-0}" = "1" ]; then
  echo "cd $ROOT && ${CMD[*]} > $LOG_DIR/mpirun.log"
  exit 0
fi
command -v mpirun >/dev/null 2>&1 || {
  echo "$NAME: mpirun not found: install OpenMPI (4.x) or use scripts/run_distribute_train.sh $NUM $MODEL ... GPU (msrun)" >&2
  exit 2
}
if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
  VISIBLE=$(tr ',' '\n' <<< "$CUDA_VISIBLE_DEVICES" | grep -c '[^[:space:]]' || true)
elif command -v nvidia-smi >/dev/null 2>&1; then
  VISIBLE=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)
else
  VISIBLE=""
fi
if [ -n "$VISIBLE" ] && [ "$VISIBLE" -lt "$NUM" ]; then
  echo "$NAME: $NUM processes requested but only $VISIBLE GPUs are visible" >&2
  exit 2
fi
cd "$ROOT"
mkdir -p "$LOG_DIR"
echo "launching $NUM GPU ranks with mpirun (logs: $LOG_DIR)"
if ! "${CMD[@]}" > "$LOG_DIR/mpirun.log" 2>&1; then
  reason=$(grep -rh "^error: " "$LOG_DIR" 2>/dev/null | head -n 1 || true)
  [ -n "$reason" ] || reason=$(grep -rhE "^[A-Za-z_.]*(Error|Exception): " "$LOG_DIR" 2>/dev/null | head -n 1 || true)
  echo "$NAME: a rank failed: ${reason:-see $LOG_DIR/mpirun.log}" >&2
  exit 1
fi
grep -rh "end of epoch\|max_steps reached\|parameter checksum" "$LOG_DIR" | tail -n 3 || true
echo "done: logs in $LOG_DIR"
