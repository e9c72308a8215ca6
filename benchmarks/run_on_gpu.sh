#!/usr/bin/env bash
# One prepared run for a machine with an NVIDIA GPU and CuPy (TensorFlow optional):
# the GPU parity tests, the tutorial's training on CuPy, and the GPU benchmarks.
#
#   bash benchmarks/run_on_gpu.sh OUT_DIR [MNIST_DIR] [BENCH_MODE]
#
# OUT_DIR gets gpu_log.txt (everything printed) and bench/ (JSON, Markdown, PNGs).
# MNIST_DIR, a folder with the four MNIST *-ubyte.gz files, enables the training run.
set -uo pipefail
out=${1:-runs/gpu}
data=${2:-}
mode=${3:-quick}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import numpy, cupy; print('numpy', numpy.__version__, '| cupy', cupy.__version__,
'| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), '| driver', cupy.cuda.runtime.driverGetVersion())"
  echo "== GPU parity tests (npcnn on CuPy vs npcnn on NumPy)"
  python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -rs
  if [ -n "$data" ]; then
    echo "== the tutorial's training on the GPU: npcnn train --device gpu"
    TIMEFORMAT="wall time of the training command: %R s"
    time python3 -m npcnn train --device gpu --data-dir "$data" --eval-every-epoch --save "$out/gpu_seed_cnn.npz"
    rm -f "$out/gpu_seed_cnn.npz"
  fi
  echo "== python -m benchmarks --device gpu --mode $mode"
  python3 -m benchmarks --device gpu --mode "$mode" --out "$out/bench"
  date -u
} 2>&1 | tee "$out/gpu_log.txt"
