"""The fast tier's levers, each timed against what it replaced (the ``levers``
section): on the seed network's shapes at batch 50, float32 unless said, all
cores unless said. The first variant of each lever is the baseline its ratio
is relative to. A lever reaches into ``npcnn.fast``'s internals, so one that
no longer exists on this code is reported as not measurable, not an error.

- fused block: Conv2D(relu) + MaxPool2D forward and backward, separate vs fused;
- threaded im2col + GEMM: BLAS alone vs 2 Python threads x 1 BLAS thread;
- col2im: the readable tap-by-tap loop vs the fast tier's (kw, C) blocks, on one
  thread and on two (``npcnn/fast/threads.py``);
- threads: the whole training step (float32 and float64) on 1 vs 2 threads;
- workspace: the float64 step with the conv layers' reused buffers vs new ones
  (with a ``predict`` on 1000 images in between);
- inference slabs: ``predict`` on 1000 images, im2col in slabs of 64 vs 32;
- GEMM orientation: conv2's forward product as ``cols @ w`` vs
  ``(w.T @ cols.T).T``, float32 and float64.
"""

from __future__ import annotations

import numpy as np

from npcnn import fast

BLOCKS = {"conv1 block": ((50, 28, 28, 1), 32), "conv2 block": ((50, 14, 14, 32), 64)}


def block_cases(name, dtype="float32"):
    """(old, new): Conv2D(relu) + MaxPool2D forward and backward, separate vs fused."""
    shape, cout = BLOCKS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((5, 5, shape[3], cout)) * 0.1).astype(dtype)
    b = (rng.standard_normal(cout) * 0.1).astype(dtype)
    dy = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, cout)).astype(dtype)
    need_dx = shape[3] > 1  # the first layer skips dx, as in training

    def old():
        z, cc = fast.conv2d_forward(x, w, b, 1, "same")
        r, rc = fast.relu_forward(z)
        y, pc = fast.maxpool2d_forward(r, 2, 2)
        fast.conv2d_backward(fast.relu_backward(fast.maxpool2d_backward(dy, pc), rc), cc, need_dx)

    def new():
        y, cache = fast.conv2d_relu_maxpool2d_forward(x, w, b, 1, "same", 2, 2)
        fast.conv2d_relu_maxpool2d_backward(dy, cache, need_dx)

    return old, new


def threaded_conv2_cases():
    """(serial, threaded): conv2's im2col + GEMM at batch 50, one call with BLAS on
    all its threads vs two Python threads each doing half the batch with BLAS on
    one thread (the thread-pool lever; NumPy releases the GIL in both)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from npcnn.fast.conv2d import im2col
    from npcnn.ops.windows import pad_nhwc

    pool = ThreadPoolExecutor(2)
    rng = np.random.default_rng(0)
    x = pad_nhwc(rng.standard_normal((50, 14, 14, 32)).astype(np.float32), ((2, 2), (2, 2)))
    w = rng.standard_normal((5 * 5 * 32, 64)).astype(np.float32)

    def part(lo, hi, y):
        np.matmul(im2col(x[lo:hi], (5, 5), (1, 1), (14, 14)), w, out=y[lo * 196 : hi * 196])

    def serial():
        part(0, 50, np.empty((50 * 196, 64), np.float32))

    def threaded():
        y = np.empty((50 * 196, 64), np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            for f in [pool.submit(part, 0, 25, y), pool.submit(part, 25, 50, y)]:
                f.result()

    return serial, threaded


def col2im_cases():
    """{name: fn}: conv2's col2im at batch 50, readable vs fast on 1 and 2 threads."""
    from npcnn.fast import conv2d as fast_conv
    from npcnn.fast import threads
    from npcnn.ops import conv2d as readable

    dcols = np.random.default_rng(0).standard_normal((50, 14, 14, 5, 5, 32)).astype(np.float32)
    args = (dcols, (50, 18, 18, 32), (5, 5), (1, 1), (14, 14))

    def on(count):
        def run():
            threads.set_threads(count)
            fast_conv.col2im(*args)

        return run

    return {"taps": lambda: readable.col2im(*args), "blocks 1": on(1), "blocks 2": on(2)}


def step_case(dtype, count=None, keep_buffers=True):
    """One training step of the seed network at batch 50 on ``count`` threads."""
    import npcnn
    from npcnn.fast import threads
    from npcnn.train import train_step

    class NoKeep(dict):  # a workspace that never keeps a buffer
        def __setitem__(self, key, value):
            pass

    model, optimizer = npcnn.seed_cnn(seed=0, dtype=dtype), npcnn.Adam(1e-3)
    if not keep_buffers:
        for layer in model.layers:
            if hasattr(layer, "workspace"):
                layer.workspace = NoKeep()
    rng = np.random.default_rng(0)
    x, labels = rng.random((50, 28, 28, 1)).astype(dtype), rng.integers(0, 10, 50)

    def run():
        if count is not None:
            threads.set_threads(count)
        train_step(model, optimizer, x, labels)

    return run


def predict_case(slab):
    import npcnn
    from npcnn.fast import conv2d as fast_conv

    model = npcnn.seed_cnn(seed=0)
    x = np.random.default_rng(0).random((1000, 28, 28, 1), dtype=np.float32)

    def run():
        fast_conv.SLAB = slab
        model.predict(x)

    return run


def orientation_cases(dtype):
    """conv2's forward product at batch 50 computed as is and with the operands
    swapped (the transposed product, then a copy back to NHWC's layout)."""
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((50 * 196, 800)).astype(dtype)
    w = rng.standard_normal((800, 64)).astype(dtype)
    return {"cols @ w": lambda: cols @ w, "(w.T @ cols.T).T": lambda: (w.T @ cols.T).T.copy()}


def levers() -> dict:
    """{lever: builder}; ``builder()`` gives {variant: fn}, the baseline first."""
    blocks = {f"fused {name}, fwd+bwd": (lambda name=name: dict(zip(("separate", "fused"),
              block_cases(name)))) for name in BLOCKS}  # fmt: skip
    return {
        **blocks,
        "conv2 im2col+GEMM on 2 Python threads x 1 BLAS thread": lambda: dict(
            zip(("BLAS alone", "threaded"), threaded_conv2_cases())
        ),
        "conv2 col2im by (kw, C) blocks": col2im_cases,
        "training step on 2 threads, float32": lambda: {
            "1 thread": step_case("float32", 1), "2 threads": step_case("float32", 2)},
        "training step on 2 threads, float64": lambda: {
            "1 thread": step_case("float64", 1), "2 threads": step_case("float64", 2)},
        "conv buffers kept, float64 step (a predict between steps)": lambda: {
            "new buffers": step_case("float64", keep_buffers=False),
            "kept": step_case("float64"),
            "predict in between": predict_case(32),
        },
        "predict in slabs of 32 images": lambda: {
            "slabs of 64": predict_case(64), "slabs of 32": predict_case(32)},
        "conv2 forward product transposed, float32": lambda: orientation_cases("float32"),
        "conv2 forward product transposed, float64": lambda: orientation_cases("float64"),
    }  # fmt: skip
