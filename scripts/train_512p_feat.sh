#!/usr/bin/env bash
# pix2pixHD training, 1024x512 with encoded instance features (seed 002 train_512p_feat.sh).
# Afterwards: python precompute_feature_maps.py --ckpt runs/pix2pixhd_512p_feat/E_latest.ckpt --dataroot DATASET_PATH
#   (feature clusters for eval_512p_feat.sh, and DATASET_PATH/train_feat/ for train_1024p_feat.sh)
# Usage: bash scripts/train_512p_feat.sh [DATASET_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="train_512p_feat.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" train 512p_feat "$@"
