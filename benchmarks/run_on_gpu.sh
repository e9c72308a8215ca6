#!/usr/bin/env bash
# One prepared run for a machine with an NVIDIA GPU and CuPy (PyTorch, JAX and TensorFlow
# optional): the card's name, the fused-kernel tests, the GPU parity tests, npcnn against
# PyTorch and JAX on the same card, the tutorial's training on CuPy, the GPU benchmarks.
#
#   bash benchmarks/run_on_gpu.sh OUT_DIR [MNIST_DIR] [BENCH_MODE]
#
# OUT_DIR gets gpu_log.txt (everything printed) and bench/ (one JSON per section, report.md,
# peers.png: npcnn on CuPy vs PyTorch and JAX on the card, the fused kernels, the suite).
# MNIST_DIR, a folder with the four MNIST *-ubyte.gz files, enables the training run.
# Meant to finish in under 10 minutes: every step has a time limit, and a step that
# would start after TOTAL_S (default 540 s) is skipped and says so.
set -uo pipefail
out=${1:-runs/gpu}
data=${2:-}
mode=${3:-quick}
total=${TOTAL_S:-540}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export CUPY_TF32=0 XLA_PYTHON_CLIENT_PREALLOCATE=false
SECONDS=0
left() { echo $((total - SECONDS)); }
step() {  # step NAME LIMIT_S COMMAND...: run it under a time limit, unless time is up
  local name=$1 limit=$2
  shift 2
  if [ "$(left)" -lt 30 ]; then
    echo "== $name: SKIPPED (${SECONDS}s spent of ${total}s)"
    return
  fi
  [ "$limit" -gt "$(left)" ] && limit=$(left)
  echo "== $name (limit ${limit}s, at ${SECONDS}s)"
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  [ $rc -eq 0 ] || echo "== $name: exit status $rc$([ $rc -eq 124 ] && echo ' (time limit)')"
}
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import numpy, cupy; print('card:', cupy.cuda.runtime.getDeviceProperties(0)['name'].decode(),
'| numpy', numpy.__version__, '| cupy', cupy.__version__,
'| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), '| driver', cupy.cuda.runtime.driverGetVersion())"
  python3 -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name(0))" 2>&1 | tail -1
  python3 -c "import jax; print('jax', jax.__version__, '|', jax.devices())" 2>&1 | tail -1
  step "fused CUDA kernels (benchmarks/cuda_kernels.py) vs npcnn.ops, on CuPy and on the CPU shim" 150 \
    python3 -m pytest tests/benchmarks/test_gpu_kernels.py tests/benchmarks/test_cuda_kernels_import.py -q -p no:cacheprovider -rs
  step "GPU parity tests (npcnn on CuPy vs npcnn on NumPy)" 90 \
    python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -rs
  step "npcnn vs PyTorch and JAX on the card, the fused kernels" 330 \
    python3 -m benchmarks --device gpu --mode "$mode" --sections peers,kernels --out "$out/bench"
  if [ -n "$data" ]; then
    export TIMEFORMAT="wall time of the training command: %R s"
    step "the tutorial's training on the GPU: npcnn train --device gpu" 120 \
      bash -c "time python3 -m npcnn train --device gpu --data-dir '$data' --eval-every-epoch --save '$out/gpu_seed_cnn.npz'"
    rm -f "$out/gpu_seed_cnn.npz"
  fi
  step "python -m benchmarks --device gpu --mode $mode" 150 \
    python3 -m benchmarks --device gpu --mode "$mode" --sections "float64,adam" --out "$out/bench"
  echo "== done in ${SECONDS}s"
  date -u
} 2>&1 | tee "$out/gpu_log.txt"
