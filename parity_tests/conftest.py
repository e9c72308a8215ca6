"""Configuration shared by every parity test: Hypothesis profiles and TensorFlow.

Hypothesis profiles (``ci``, ``dev``) are registered in the root ``conftest.py``.

TensorFlow is configured here, once, before any test module imports it
(environment variables only take effect if set before ``import tensorflow``):

- ``TF_CPP_MIN_LOG_LEVEL=2``: hide TensorFlow's C++ info/warning chatter.
- ``TF_ENABLE_ONEDNN_OPTS=0``: use TensorFlow's own Eigen CPU kernels as the
  reference, not oneDNN's. oneDNN picks different code paths (and rounding)
  for AVX2, AVX-512 or AMX at run time, so a derandomized CI run would see
  different float32 values on different runners; Eigen's kernels are also the
  ones ``enable_op_determinism`` is documented for. Our tolerances bound
  *any* summation order, so the tests should pass with oneDNN too: export
  ``TF_ENABLE_ONEDNN_OPTS=1`` to check (``setdefault`` respects your value).
- one intra-op and one inter-op thread: the ops are tiny, the CI machine has
  2 cores, and a single thread fixes the order of every reduction.
- ``enable_op_determinism()``: TensorFlow raises instead of silently using a
  nondeterministic kernel.
- GPUs hidden: the reference runs on the CPU (a GPU build would otherwise
  pick cuDNN algorithms, some with TF32 math, at run time).

If TensorFlow is not installed the test modules skip themselves (they call
``pytest.importorskip``), unless the environment variable ``CI`` is set: then
this file raises, because CI must run the parity tests.
"""

from __future__ import annotations

import os
import sys

_TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
_TF_ALREADY_IMPORTED = "tensorflow" in sys.modules  # then the variables come too late
for _name, _value in _TF_ENV.items():
    os.environ.setdefault(_name, _value)

HYPOTHESIS_PROFILE = os.environ.get("NPCNN_HYPOTHESIS_PROFILE", "ci")  # loaded by ../conftest.py

try:
    import tensorflow as tf
except ImportError as error:
    if os.environ.get("CI"):
        raise ImportError(
            "CI is set but TensorFlow cannot be imported: the parity tests must run in CI "
            "(pip install -e '.[test]')"
        ) from error
    tf = None
else:
    tf.config.set_visible_devices([], "GPU")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()


def pytest_report_header(config):
    """Say, at the top of the run, which TensorFlow the parity tests compare against."""
    profile = HYPOTHESIS_PROFILE
    if tf is None:
        return f"parity: TensorFlow not installed, parity tests skip; hypothesis={profile}"
    env = " ".join(f"{name}={os.environ.get(name)}" for name in _TF_ENV)
    late = " (WARNING: tensorflow was imported before conftest, env ignored)"
    return (
        f"parity: tensorflow {tf.__version__}, {env}, 1 thread, op determinism, CPU only, "
        f"hypothesis profile={profile}" + (late if _TF_ALREADY_IMPORTED else "")
    )
