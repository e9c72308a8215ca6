"""Benchmarks: npcnn's NumPy (or CuPy) kernels against TensorFlow's, op by op.

Run ``python -m benchmarks --help``. Benchmarks are not tests: the test suite
only smoke-runs this package at a tiny size (tests/test_benchmarks_smoke.py).

- ``timing.py``: the stopwatch (warm-up, interleaved rounds, medians, spread);
- ``workloads.py``: the ops, training step, Adam and inference, their FLOPs;
- ``machine.py``: what was measured on (CPU, BLAS threads, TF settings, GPU);
- ``suite.py``: the sections and the groups of compared cases;
- ``report.py``: GFLOP/s, % of the matmul peak, ratios, Markdown and plots.
"""
