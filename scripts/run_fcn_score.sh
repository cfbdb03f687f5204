#!/usr/bin/env bash
# Cityscapes FCN score (Caffe-free) of a folder of generated images named by frame id (<city>_<seq>_<frame>*.png).
# Usage: bash scripts/run_fcn_score.sh [RESULT_DIR] [CITYSCAPES_DIR] [FCN_CKPT] [EXTRA FLAGS...]
#   RESULT_DIR      generated images; "real" scores the real val photos resized to 256x256 (upper bound)
#   CITYSCAPES_DIR  original Cityscapes tree (gtFine/val/<city>/*_gtFine_labelIds.png, leftImg8bit/ for "real")
#   FCN_CKPT        FCN-8s checkpoint (python -m src.metrics.caffemodel --caffemodel fcn-8s-cityscapes.caffemodel
#                   --out FCN.ckpt), a .caffemodel (converted once next to it), or a segmenter trained with
#                   python -m src.metrics.segmenter
#   EXTRA FLAGS     e.g. --strict, --out_dir DIR, --task photo_to_labels, --max_frames N, --benchmark N
# Scores go to RESULT_DIR/fcn_score/ (fcn_scores.json, fcn_scores.txt, fcn_per_class.md, evaluation_results.txt).
# An interrupted run resumes when started again with the same arguments.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "Usage: bash scripts/run_fcn_score.sh [RESULT_DIR|real] [CITYSCAPES_DIR] [FCN_CKPT] [EXTRA FLAGS...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="$1"; CITYSCAPES="$2"; FCN="$3"
shift 3
if [ "$RESULTS" = "real" ]; then
  ARGS=(--real)
else
  [ -d "$RESULTS" ] || { echo "run_fcn_score.sh: result folder not found: $RESULTS" >&2; exit 2; }
  ARGS=(--result_dir "$RESULTS")
fi
# Run from the caller's directory (relative paths, e.g. --out_dir, stay relative to it).
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" python -m src.metrics.fcn_score "${ARGS[@]}" \
  --cityscapes_dir "$CITYSCAPES" --fcn_ckpt "$FCN" "$@"
