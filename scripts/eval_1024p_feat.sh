#!/usr/bin/env bash
# pix2pixHD evaluation, 2048x1024 with features (seed 002 eval_1024p_feat.sh), sampled from the clusters of the
# 512p_feat run; --use_encoded_image True reads DATASET_PATH/test_feat/ (precompute_feature_maps.py --phase test).
# Usage: bash scripts/eval_1024p_feat.sh [DATASET_PATH] [CKPT_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="eval_1024p_feat.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" eval 1024p_feat "$@"
