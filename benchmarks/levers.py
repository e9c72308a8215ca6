"""Per-lever A/B timings of the fast tier (``python -m benchmarks.levers``).

Each lever is timed old vs new in interleaved rounds (medians), on the seed
network's shapes at batch 50, float32 unless said. The fused block's lines run
with BLAS limited to ``--threads`` threads (default 1); the others as a user
runs npcnn (all cores), each naming what it switches:

- col2im: the readable tap-by-tap loop vs the fast tier's (kw, C) blocks, on one
  thread and split over two (``npcnn/fast/threads.py``);
- threads: the whole training step (float32 and float64) on 1 vs 2 threads;
- BLAS idle spin: the step in fresh processes with OpenBLAS's idle threads
  spinning 2**28 cycles (its default) vs 2**16 (what npcnn sets);
- workspace: the float64 step with the conv layers' reused buffers vs new ones
  (with a ``predict`` on 1000 images in between, as in the targets run);
- inference slabs: ``predict`` on 1000 images, im2col in slabs of 64 vs 32;
- GEMM orientation (not kept): conv2's forward product as ``cols @ w`` vs
  ``(w.T @ cols.T).T``, float32 and float64.
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


def spin_child(rounds):
    """Median ms of the float32 step in this process (run with an OPENBLAS env)."""
    return interleaved({"step": step_case("float32")}, rounds)["step"] * 1e3


def blas_spin(rounds):
    """{timeout exponent: median ms} of the step in fresh processes, alternating."""
    import os
    import statistics
    import subprocess

    results = {"28": [], "16": []}
    for _ in range(max(3, rounds // 3)):
        for exponent in results:
            env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT=exponent)
            cmd = [sys.executable, "-m", "benchmarks.levers", "--spin-child", "20"]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            results[exponent].append(float(done.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(v) for k, v in results.items()}


def orientation_cases(dtype):
    """conv2's forward product at batch 50 computed as is and with the operands
    swapped (the transposed product, then a copy back to NHWC's layout)."""
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((50 * 196, 800)).astype(dtype)
    w = rng.standard_normal((800, 64)).astype(dtype)
    return {"cols @ w": lambda: cols @ w, "(w.T @ cols.T).T": lambda: (w.T @ cols.T).T.copy()}


def report(title, med, names):
    base = med[names[0]]
    cells = ", ".join(f"{n} {med[n] * 1e3:.2f} ms ({base / med[n]:.2f}x)" for n in names)
    print(f"{title}: {cells}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.levers")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--spin-child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.spin_child:
        print(spin_child(args.spin_child))
        return 0
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
    from npcnn.fast import threads

    before = threads.get_threads()
    med = interleaved(col2im_cases(), args.rounds, pause=0.01)
    report("conv2 col2im, N=50, all cores", med, ["taps", "blocks 1", "blocks 2"])
    for dtype in ("float32", "float64"):
        cases = {"1 thread": step_case(dtype, 1), "2 threads": step_case(dtype, 2)}
        report(f"training step, {dtype}", interleaved(cases, args.rounds), list(cases))
    threads.set_threads(before)
    cases = {"new buffers": step_case("float64", keep_buffers=False), "kept": step_case("float64")}
    cases["predict in between"] = predict_case(32)  # big arrays come and go, as in targets
    report(
        "training step, float64, conv buffers (a predict on 1000 images between the steps)",
        interleaved(cases, args.rounds),
        ["new buffers", "kept"],
    )
    cases = {"slabs of 64": predict_case(64), "slabs of 32": predict_case(32)}
    report("predict, 1000 images", interleaved(cases, args.rounds), list(cases))
    for dtype in ("float32", "float64"):
        cases = orientation_cases(dtype)
        report(f"conv2 forward product, {dtype}", interleaved(cases, args.rounds), list(cases))
    spin = blas_spin(args.rounds)
    print(
        "training step, fresh processes, OpenBLAS idle threads spinning 2**28 cycles "
        f"{spin['28']:.2f} ms, 2**16 {spin['16']:.2f} ms ({spin['28'] / spin['16']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
