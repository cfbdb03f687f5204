#!/usr/bin/env bash
# pix2pixHD evaluation, 2048x1024 (seed 002 eval_1024p.sh).
# Usage: bash scripts/eval_1024p.sh [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="eval_1024p.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" eval 1024p "$@"
