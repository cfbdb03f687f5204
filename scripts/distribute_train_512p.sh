#!/usr/bin/env bash
# pix2pixHD data-parallel training, 1024x512, labels + instance boundaries (seed 002 distribute_train_512p.sh).
# Usage: bash scripts/distribute_train_512p.sh [DEVICE_NUM] [DISTRIBUTE] [DATASET_PATH] [EXTRA FLAGS...]
# Arguments and environment: see scripts/pix2pixhd.sh.
SCRIPT_NAME="distribute_train_512p.sh" exec bash "$(dirname "${BASH_SOURCE[0]}")/pix2pixhd.sh" distribute 512p "$@"
