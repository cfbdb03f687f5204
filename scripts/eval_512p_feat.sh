#!/usr/bin/env bash
# pix2pixHD evaluation, 1024x512 with features sampled from the run's clusters (seed 002 eval_512p_feat.sh).
# Usage: bash scripts/eval_512p_feat.sh [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="eval_512p_feat.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" eval 512p_feat "$@"
