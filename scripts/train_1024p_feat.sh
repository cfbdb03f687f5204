#!/usr/bin/env bash
# pix2pixHD training, 2048x1024 with encoded instance features (seed 002 train_1024p_feat.sh; reference
# train_1024p_feat_24G.sh): precomputes the 512p_feat encoder's features first (E_CKPT) when DATASET_PATH/train_feat
# is missing, and trains no encoder. Needs runs/pix2pixhd_512p_feat (scripts/train_512p_feat.sh) first.
# Usage: bash scripts/train_1024p_feat.sh [DATASET_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="train_1024p_feat.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" train 1024p_feat "$@"
