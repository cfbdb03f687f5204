#!/usr/bin/env bash
# Evaluate a generator checkpoint on its run's test split (or on any images with --input PATH).
# Usage: bash scripts/run_eval.sh [CKPT_PATH] [DATA_PATH] [EXTRA FLAGS...]
#   CKPT_PATH  e.g. runs/pix2pix_facades/G_latest.ckpt (the run's config.yaml beside it is used)
#   DATA_PATH  dataset folder; "-" keeps the one recorded in the run's config
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "Usage: bash scripts/run_eval.sh [CKPT_PATH] [DATA_PATH] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -f "$1" ] || { echo "run_eval.sh: checkpoint not found: $1" >&2; exit 2; }
CKPT="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
ARGS=(--ckpt "$CKPT")
if [ $# -ge 2 ] && [ "$2" != "-" ]; then
  ARGS+=(--dataroot "$(cd "$2" 2>/dev/null && pwd)") || { echo "run_eval.sh: dataset folder not found: $2" >&2; exit 2; }
fi
shift $(( $# < 2 ? $# : 2 ))
cd "$ROOT"
python eval.py "${ARGS[@]}" "$@"
