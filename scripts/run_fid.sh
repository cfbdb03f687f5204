#!/usr/bin/env bash
# FID and KID of two image folders with pytorch-fid's InceptionV3 (MindSpore, no PyTorch; see docs/fid.md).
# Usage: bash scripts/run_fid.sh [REAL_DIR] [FAKE_DIR] [WEIGHTS] [EXTRA FLAGS...]
#   WEIGHTS      pt_inception-2015-12-05-6726825d.pth (download it once; never fetched at run time)
#   EXTRA FLAGS  e.g. --json fid.json, --cache_dir DIR ('' = no cache), --batch_size N
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "Usage: bash scripts/run_fid.sh [REAL_DIR] [FAKE_DIR] [pt_inception-2015-12-05-6726825d.pth] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REAL="$1"; FAKE="$2"; WEIGHTS="$3"
shift 3
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" python -m src.metrics.fid "$REAL" "$FAKE" --weights "$WEIGHTS" "$@"
