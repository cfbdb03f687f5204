#!/usr/bin/env bash
# Data-parallel training on Ascend with the classic rank table launch (one process per device, HCCL).
# Usage: bash scripts/run_distribute_train_ascend.sh [RANK_TABLE_FILE] [DEVICE_NUM] [MODEL] [DATA_PATH] [CONFIG_PATH] [EXTRA FLAGS...]
#   RANK_TABLE_FILE  the HCCL rank table JSON of this machine (hccl_tools.py writes one), e.g. rank_table_8pcs.json
#   DEVICE_NUM       processes, one per device; must equal the number of devices in the rank table
#   MODEL            pix2pix, cyclegan or pix2pixhd
#   DATA_PATH        dataset folder
#   CONFIG_PATH      recipe, e.g. configs/pix2pix_facades.yaml ("-" for none)
# Environment: LOG_DIR (default runs/rank_table_logs_<MODEL>), DRY_RUN=1 prints each rank's command and exits.
# Each rank gets RANK_TABLE_FILE, RANK_SIZE, RANK_ID and DEVICE_ID (the table's device_id of that rank) and writes
# LOG_DIR/worker_<RANK_ID>.log. msrun (scripts/run_distribute_train.sh) needs no rank table and is the launcher
# MindSpore recommends; this script is for clusters set up for the rank table method.
set -euo pipefail
NAME="run_distribute_train_ascend.sh"
usage="Usage: bash scripts/$NAME [RANK_TABLE_FILE] [DEVICE_NUM] [MODEL] [DATA_PATH] [CONFIG_PATH] [EXTRA FLAGS...]"
if [ $# -lt 5 ]; then echo "$usage" >&2; exit 2; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -f "$1" ] || { echo "$NAME: rank table file not found: $1" >&2; exit 2; }
TABLE="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
NUM="$2"; MODEL="$3"
case "$NUM" in ''|*[!0-9]*|0) echo "$NAME: DEVICE_NUM must be a positive integer, got '$NUM'" >&2; exit 2;; esac
DATA="$(cd "$4" 2>/dev/null && pwd)" || { echo "$NAME: dataset folder not found: $4" >&2; exit 2; }
CONFIG_ARGS=()
if [ "$5" != "-" ]; then
  [ -f "$5" ] || { echo "$NAME: config not found: $5" >&2; exit 2; }
  CONFIG_ARGS=(--config_path "$(cd "$(dirname "$5")" && pwd)/$(basename "$5")")
fi
shift 5
PY="$(command -v python || command -v python3)" || { echo "$NAME: python not found on PATH" >&2; exit 2; }

# The device of every rank, from the table: "RANK_ID DEVICE_ID" lines in rank order. Both the rank table v1.0
# layout (server_list[].device[] with rank_id) and the older one (group_list[].instance_list[].devices[]) are read.
DEVICES="$("$PY" - "$TABLE" "$NUM" <<'PYEOF'
import json, sys
path, num = sys.argv[1], int(sys.argv[2])
def fail(msg):
    print(f"run_distribute_train_ascend.sh: {msg}", file=sys.stderr)
    sys.exit(2)
try:
    with open(path) as f:
        table = json.load(f)
except (OSError, UnicodeDecodeError, ValueError) as err:
    fail(f"rank table {path} is not readable JSON: {str(err).splitlines()[0]}")
if not isinstance(table, dict):
    fail(f"rank table {path} is not a JSON object")
devices = []  # (rank_id or None, device_id, server)
if "server_list" in table:
    servers = table["server_list"] or []
    for server in servers:
        for d in server.get("device", []) or []:
            devices.append((d.get("rank_id"), d.get("device_id"), server.get("server_id")))
elif "group_list" in table:
    servers = []
    for group in table["group_list"] or []:
        for inst in group.get("instance_list", []) or []:
            servers.append(inst.get("server_id"))
            inner = inst.get("devices", []) or []
            for d in inner:
                rank = inst.get("rank_id") if len(inner) == 1 else None
                devices.append((rank, d.get("device_id"), inst.get("server_id")))
else:
    fail(f"rank table {path} has neither 'server_list' nor 'group_list'; is it an HCCL rank table?")
if len({s for _, _, s in devices}) > 1:
    fail(f"rank table {path} lists devices on {len({s for _, _, s in devices})} servers; this script starts the "
         f"ranks of one machine (use scripts/run_distribute_train.sh, msrun, for several machines)")
if len(devices) != num:
    fail(f"DEVICE_NUM {num} does not match the {len(devices)} devices in rank table {path}")
try:
    ranked = sorted(((int(r) if r is not None else i), int(d)) for i, (r, d, _) in enumerate(devices))
except (TypeError, ValueError):
    fail(f"rank table {path} has a device_id or rank_id that is not an integer")
if [r for r, _ in ranked] != list(range(num)):
    fail(f"rank table {path}: rank ids must be 0..{num - 1}, got {[r for r, _ in ranked]}")
for rank, device in ranked:
    print(rank, device)
PYEOF
)" || exit 2

LOG_DIR="${LOG_DIR:-$ROOT/runs/rank_table_logs_$MODEL}"
cd "$ROOT"
ARGS=(train.py --model "$MODEL" --dataroot "$DATA" "${CONFIG_ARGS[@]}" --device_target Ascend --run_distribute True "$@")
if [ "${DRY_RUN:-0}" = "1" ]; then
  while read -r rank device; do
    echo "cd $ROOT && RANK_TABLE_FILE=$TABLE RANK_SIZE=$NUM RANK_ID=$rank DEVICE_ID=$device $PY ${ARGS[*]} > $LOG_DIR/worker_$rank.log"
  done <<< "$DEVICES"
  exit 0
fi
mkdir -p "$LOG_DIR"
export RANK_TABLE_FILE="$TABLE" RANK_SIZE="$NUM"
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_all; exit 130' INT TERM
echo "launching $NUM Ascend ranks from $TABLE (logs: $LOG_DIR/worker_*.log)"
while read -r rank device; do
  RANK_ID="$rank" DEVICE_ID="$device" "$PY" "${ARGS[@]}" > "$LOG_DIR/worker_$rank.log" 2>&1 &
  PIDS+=($!)
done <<< "$DEVICES"
failed=0
for _ in "${PIDS[@]}"; do
  if ! wait -n; then failed=1; break; fi
done
if [ "$failed" = "1" ]; then
  stop_all
  wait || true
  reason=$(grep -h "^error: " "$LOG_DIR"/worker_*.log 2>/dev/null | head -n 1 || true)
  [ -n "$reason" ] || reason=$(grep -hE "^[A-Za-z_.]*(Error|Exception): " "$LOG_DIR"/worker_*.log 2>/dev/null \
                                 | head -n 1 || true)
  echo "$NAME: a rank failed, the others were stopped: ${reason:-see $LOG_DIR}" >&2
  exit 1
fi
grep -h "end of epoch\|max_steps reached\|parameter checksum" "$LOG_DIR/worker_0.log" | tail -n 3 || true
echo "done: logs in $LOG_DIR"
