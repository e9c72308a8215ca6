"""Benchmarks: npcnn's NumPy (or CuPy) kernels against TensorFlow's, op by op.

Run ``python -m benchmarks --help``. Benchmarks are not tests: the test suite
only smoke-runs this package at a tiny size (tests/test_benchmarks_smoke.py).

- ``timing.py``: the stopwatch (warm-up, interleaved rounds, medians, spread);
- ``workloads.py``: the ops, training step, Adam and inference, their FLOPs;
- ``machine.py``: what was measured on (CPU, BLAS threads, TF settings, GPU);
- ``suite.py``: the sections and the groups of compared cases;
- ``report.py``: GFLOP/s, % of the matmul peak, ratios, Markdown and plots;
- ``targets.py``: issue 12's targets table (npcnn old and new vs TF, one core
  and all cores) and the cost against the batch size;
- ``breakdown.py``: where the training step's time goes, per op, npcnn
  (before and after) vs TF, and its plot;
- ``checkouts.py``: another checkout's npcnn loaded beside this one (the "old");
- ``levers.py``, ``ab_commits.py``: one lever, or two whole commits, old vs new.
"""

import npcnn  # noqa: F401, E402 -- first, so that its OPENBLAS_THREAD_TIMEOUT reaches OpenBLAS
