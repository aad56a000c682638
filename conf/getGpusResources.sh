#!/usr/bin/env bash
# Spark GPU discovery script: prints the GPUs this executor (or worker) may use as
#   {"name": "gpu", "addresses": ["0", "1"]}
# Set it as spark.executor.resource.gpu.discoveryScript (standalone workers:
# spark.worker.resource.gpu.discoveryScript), or pass it to sparkprune with --gpu-discovery-script.
# The Java alternative is spark.resources.discoveryPlugin=dev.sparkprune.jobs.gpu.NvidiaSmiDiscoveryPlugin.
#
# nvidia-smi lists the GPUs the container or cgroup exposes; where CUDA_VISIBLE_DEVICES narrows
# them further, its entries are the addresses (as CUDA numbers them inside the process).
set -euo pipefail

if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  IFS=',' read -r -a addresses <<< "$CUDA_VISIBLE_DEVICES"
  indices=()
  for i in "${!addresses[@]}"; do
    indices+=("$i")
  done
else
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "getGpusResources.sh: nvidia-smi not found: this node has no NVIDIA driver" >&2
    exit 1
  fi
  mapfile -t indices < <(nvidia-smi --query-gpu=index --format=csv,noheader | tr -d ' ')
fi

json=""
for index in "${indices[@]}"; do
  [[ -n "$index" ]] || continue
  json+="${json:+, }\"$index\""
done
echo "{\"name\": \"gpu\", \"addresses\": [$json]}"
