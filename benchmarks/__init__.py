"""Benchmarks: npcnn against TensorFlow, PyTorch, JAX and MyGrad, on the same work.

Run ``python -m benchmarks --help`` from the source tree (this package is not
installed with npcnn). Benchmarks are not tests: the test suite only
smoke-runs them at tiny sizes (tests/test_benchmarks_smoke.py).

- ``__main__.py``: the one entry point (sections, systems, cores, publishing);
- ``suite.py``: the coordinator: sections, interleaved rounds across the workers;
- ``worker.py``: one system in a process of its own, and the protocol;
- ``systems.py``: the registry of systems and their thread settings;
- ``workloads.py``, ``cases.py``: the network, its ops, inputs and FLOPs;
- ``peers.py``: PyTorch, JAX and MyGrad built from npcnn's weights;
- ``memory.py``: peak memory of inference; ``machine.py``: what was measured on;
- ``report.py``: tables, figure, publishing;
- ``gpu.py``, ``cuda_kernels.py``/``.cu``: what only ``--device gpu`` uses.
"""
