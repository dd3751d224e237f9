#!/usr/bin/env bash
# Run a study on this machine over all of its devices (GPUs, TPU cores or the CPU).
#   launch/single_machine.sh synthetic runs/synthetic [--config.field=value ...]
# DRY_RUN=1 prints the command instead of running it.
set -euo pipefail
CONFIG=${1:?config file}
WORKDIR=${2:?workdir}
shift 2
CMD=(saljax study --config "$CONFIG" --workdir "$WORKDIR" "$@")
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${CMD[@]}"; echo
  exit 0
fi
mkdir -p "$WORKDIR"
"${CMD[@]}" 2>&1 | tee -a "$WORKDIR/study.log"
