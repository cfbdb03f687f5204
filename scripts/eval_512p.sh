#!/usr/bin/env bash
# pix2pixHD evaluation, 1024x512 (seed 002 eval_512p.sh): translates DATASET_PATH/test_label (+ test_inst).
# Usage: bash scripts/eval_512p.sh [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="eval_512p.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" eval 512p "$@"
