#!/usr/bin/env bash
# pix2pixHD training, 2048x1024, local enhancer from the 512p run (seed 002 train_1024p.sh; reference
# train_1024p_24G.sh).
# Usage: bash scripts/train_1024p.sh [DATASET_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="train_1024p.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" train 1024p "$@"
