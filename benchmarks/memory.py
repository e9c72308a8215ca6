"""Peak memory of inference: npcnn's ``Sequential.predict`` against Keras's
``Model.predict`` on the same images, at several ``batch_size`` settings.

Each measurement runs in a fresh process (so that neither library's cached
arrays or allocator state leak into the other's figure): it builds the model,
creates the images, warms up on a few of them, resets the kernel's peak-RSS
mark (``/proc/self/clear_refs``), and reports the peak resident memory during
``predict`` above what the process held just before it. Linux only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[4])
system, n, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3]
batch = None if batch == "default" else int(batch)
import numpy as np

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

x = np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)
if system == "npcnn":
    import npcnn
    model = npcnn.seed_cnn(seed=0)
    predict = lambda a: model.predict(a, batch_size=batch)
else:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tfcnn
    model = tfcnn.SeedCNN(seed=0)
    predict = lambda a: model.predict(a, batch_size=batch, verbose=0)
predict(x[: min(n, 64)])  # warm up: tracing, thread pools, first allocations
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM, the peak resident set, to the current one
before = status("VmRSS")
out = predict(x)
assert out.shape == (n, 10)
print(json.dumps({"peak_bytes": status("VmHWM") - before}))
"""


def available() -> str:
    """'' when peak memory can be measured here, else why not."""
    if not os.path.exists("/proc/self/clear_refs"):
        return "peak memory needs Linux's /proc/self/clear_refs"
    return ""


def peak_bytes(system: str, n: int, batch_size) -> int:
    """Peak resident bytes above the baseline while ``system`` ('npcnn' or 'tf')
    predicts ``n`` images with ``batch_size`` (None: the library's default)."""
    root = str(Path(__file__).resolve().parent.parent)
    batch = "default" if batch_size is None else str(batch_size)
    cmd = [sys.executable, "-c", CHILD, system, str(n), batch, root]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]
