#!/usr/bin/env bash
# A study on every worker of a Cloud TPU pod slice: the same command on all hosts; JAX's
# distributed runtime joins them (TPU_WORKER_HOSTNAMES), process 0 writes the outputs.
#   TPU=my-v5p-64 ZONE=us-east5-a launch/tpu_pod.sh rsna_inception gs://bucket/runs/rsna
# DRY_RUN=1 prints the gcloud command instead of running it.
# Set: TPU (the TPU VM name), ZONE, optionally PROJECT and REPO (the checkout on every worker,
# default ~/saljax). WORKDIR must be visible to every worker (a GCS FUSE mount or NFS path).
set -euo pipefail
CONFIG=${1:?config file}
WORKDIR=${2:?workdir visible to every worker}
shift 2
TPU=${TPU:?set TPU to the TPU VM name}
ZONE=${ZONE:?set ZONE}
REPO=${REPO:-~/saljax}
PROJECT_FLAG=()
if [[ -n "${PROJECT:-}" ]]; then PROJECT_FLAG=(--project "$PROJECT"); fi
EXTRA=$(printf '%q ' "$@")
REMOTE="cd $REPO && pip install -q -e . && saljax study --config $CONFIG --workdir $WORKDIR $EXTRA"
CMD=(gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" "${PROJECT_FLAG[@]}" --worker=all
     --command "$REMOTE")
if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${CMD[@]}"; echo
  exit 0
fi
"${CMD[@]}"
