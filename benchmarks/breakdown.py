"""Where npcnn's training step goes: its matrix products, Adam's update, the rest.

The targets compare npcnn's whole step with TensorFlow's. This section says how
much of npcnn's step is spent where NumPy has nothing faster to offer: inside
OpenBLAS's matrix products (at the speed they run on the network's shapes, in
the step, caches as the step leaves them) and inside Adam's update (twelve NumPy
passes over 3.27 M parameters). What is left, "the rest", is everything the
fast tier's own code decides: copies, pooling and its routing, ReLU, the loss,
Python between the calls.

Every matrix product of the fast tier goes through NumPy's ``matmul`` or the
row-wise convolution's ``add_product`` (``npcnn/fast/cblas.py``), and Adam through
the optimizer's ``apply_gradients``. :func:`instrument` wraps the three, once per
worker process, to add up the seconds spent inside each (and the products'
FLOPs, to check that none escapes: ``tests/benchmarks/test_breakdown.py``). A
case's ``clock`` (``worker.run_block``) reads one of the sums, so the suite
times each part of the same training steps in its usual rounds: the products'
seconds per step, Adam's, and the rest (the wall clock minus both).

On one core only: on several threads the sums would add up the threads' times.
"""

from __future__ import annotations

import time

import numpy as np

PARTS = ("matrix products", "adam", "rest")  # the rows of the section, in this order


class Sums:
    """Seconds spent inside the matrix products and Adam's update, and the products' FLOPs."""

    products_s = adam_s = flops = 0.0


_sums = None  # the process's Sums, once instrumented
_originals = []  # what instrument() replaced: numpy.matmul, rowwise.add_product


def product_flops(a_shape, b_shape) -> float:
    """2*m*k*n of ``a @ b`` (times any leading batch dimensions of ``a``)."""
    *batch, m, k = a_shape
    return 2.0 * float(np.prod(batch)) * m * k * b_shape[-1]


def instrument() -> Sums:
    """Wrap ``numpy.matmul`` and the fast tier's ``add_product`` to add their time and
    FLOPs to the process's :class:`Sums` (once; later calls return the same sums)."""
    global _sums
    if _sums is not None:
        return _sums
    from npcnn.fast import rowwise

    sums, real_matmul, real_add = Sums(), np.matmul, rowwise.add_product

    def matmul(a, b, *args, **kwargs):
        start = time.perf_counter()
        out = real_matmul(a, b, *args, **kwargs)
        sums.products_s += time.perf_counter() - start
        sums.flops += product_flops(np.shape(a), np.shape(b))
        return out

    def add_product(a, b, c, trans="nn"):
        start = time.perf_counter()
        done = real_add(a, b, c, trans)
        sums.products_s += time.perf_counter() - start
        if done:  # c (m, n) += op(a) @ op(b), op(a) m x k
            sums.flops += 2.0 * c.size * (a.shape[0] if trans[0] == "t" else a.shape[1])
        return done

    np.matmul, rowwise.add_product = matmul, add_product
    _sums, _originals[:] = sums, [real_matmul, real_add]
    return sums


def restore() -> None:
    """Undo :func:`instrument` (a worker never does; a test must)."""
    global _sums
    if _sums is not None:
        from npcnn.fast import rowwise

        np.matmul, rowwise.add_product = _originals
        _sums = None


def timed_updates(optimizer, sums: Sums) -> None:
    """Add the time of ``optimizer.apply_gradients`` to ``sums.adam_s`` (once per optimizer)."""
    if getattr(optimizer, "_timed_by_breakdown", False):
        return
    real = optimizer.apply_gradients

    def apply_gradients(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            sums.adam_s += time.perf_counter() - start

    optimizer.apply_gradients = apply_gradients
    optimizer._timed_by_breakdown = True


def case(net, part, images, labels):
    """(fn, None): one training step of ``net`` (``workloads.NpcnnNetwork``), whose
    ``clock`` counts the seconds of ``part`` (one of :data:`PARTS`) only."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    sums = instrument()
    timed_updates(net.optimizer, sums)

    def step():
        net.train_step(images, labels)

    step.clock = {
        "matrix products": lambda: sums.products_s,
        "adam": lambda: sums.adam_s,
        "rest": lambda: time.perf_counter() - sums.products_s - sums.adam_s,
    }[part]
    return step, None
