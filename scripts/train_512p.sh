#!/usr/bin/env bash
# pix2pixHD training, 1024x512, labels + instance boundaries (seed 002 train_512p.sh).
# Usage: bash scripts/train_512p.sh [DATASET_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="train_512p.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" train 512p "$@"
