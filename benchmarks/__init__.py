"""Benchmarks: npcnn against TensorFlow, PyTorch, JAX and MyGrad, on the same work.

Run ``python -m benchmarks --help`` from the source tree (this package is not
installed with npcnn). Benchmarks are not tests: the test suite only
smoke-runs them at tiny sizes (tests/test_benchmarks_smoke.py).

- ``__main__.py``: the one entry point (sections, systems, cores, output folder);
- ``suite.py``: the runner, one method per section;
- ``timing.py``: the stopwatch (warm-up, interleaved rounds, medians, spread);
- ``workloads.py``: the network's shapes and FLOP count, inputs, npcnn and TF;
- ``peers.py``: PyTorch, JAX and MyGrad built from npcnn's weights;
- ``systems.py``: the registry of systems a workload runs on;
- ``breakdown.py``, ``memory.py``, ``levers.py``: where the step's time goes,
  peak memory of inference, the fast tier's levers;
- ``checkouts.py``: another checkout's npcnn beside this one (``--old``);
- ``machine.py``: what was measured on; ``report.py``: the report writer;
- ``gpu.py``, ``cuda_kernels.py``/``.cu``: what only ``--device gpu`` uses.
"""

import npcnn  # noqa: F401, E402 -- first, so that its OPENBLAS_THREAD_TIMEOUT reaches OpenBLAS
