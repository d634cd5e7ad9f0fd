#!/usr/bin/env bash
# The prepared GPU check (issue 17): one command, under 8 minutes on one GPU. It runs the smoke
# config end to end on CUDA, measures training throughput (NCSN++ FFHQ-64 scale 128, batch 256:
# fp32 / TF32 / bf16 / torch.compile / the pipeline's loop), a float64 eigendecomposition at
# d = 12288 and the N < d Gram fit, the nearest-neighbour search at paper size and the Heun-18
# sampler, and writes benchmarks/out/gpu_check.json and gpu_check.md (benchmarks/gpu_check.py).
#
#   bash benchmarks/gpu_check.sh          # on a GPU node
#   bash benchmarks/gpu_check.sh --cpu    # toy sizes on the CPU (the test suite runs this)
#
# Then: python benchmarks/cost_model.py config/ffhq64.yaml --throughput benchmarks/out/gpu_check.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec "$PY" benchmarks/gpu_check.py "$@"
