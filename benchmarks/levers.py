"""Per-lever A/B timings of the fast tier (``python -m benchmarks.levers``).

Each lever is timed old vs new in interleaved rounds (medians), on the seed
network's shapes at batch 50, float32, with BLAS limited to ``--threads``
threads (default 1: the machine is shared and 1 thread is the steadiest).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from npcnn import fast

from .targets import interleaved

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


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.levers")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name in BLOCKS:
            old, new = block_cases(name, args.dtype)
            med = interleaved({"old": old, "new": new}, args.rounds, pause=0.01)
            print(
                f"{name}, fwd+bwd, N=50, {args.dtype}, {args.threads} BLAS thread(s): "
                f"old {med['old'] * 1e3:.2f} ms, new (fused) {med['new'] * 1e3:.2f} ms, "
                f"{med['old'] / med['new']:.2f}x"
            )
    serial, threaded = threaded_conv2_cases()
    med = interleaved({"serial": serial, "threaded": threaded}, args.rounds, pause=0.01)
    print(
        f"conv2 im2col+GEMM, N=50: BLAS alone {med['serial'] * 1e3:.2f} ms, "
        f"2 Python threads x 1 BLAS thread {med['threaded'] * 1e3:.2f} ms, "
        f"{med['serial'] / med['threaded']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
