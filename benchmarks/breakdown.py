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
the optimizer's ``apply_gradients``. While a step of this section runs
(:func:`timed`), the three are wrapped to add the seconds spent inside them to
:data:`SUMS` (and the products' FLOPs, to check that none escapes:
``tests/benchmarks/test_breakdown.py``). A case's ``clock`` (``worker.run_block``)
reads one of the sums, so the suite times each part of the same training steps
in its usual rounds: the products' seconds per step, Adam's, and the rest (the
wall clock minus both). The wrappers cost about 0.7 us a call (57 products a
step: 0.04 ms), counted in the rest.

On one core only: on several threads the sums would add up the threads' times.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

PARTS = ("matrix products", "adam", "rest")  # the rows of the section, in this order


class Sums:
    """Seconds spent inside the matrix products and Adam's update, and the products' FLOPs."""

    products_s = adam_s = flops = 0.0


SUMS = Sums()  # the process's, added to by every timed step


@contextmanager
def timed(optimizer):
    """While inside: ``numpy.matmul``, the fast tier's ``add_product`` and
    ``optimizer.apply_gradients`` add their seconds (and the products' FLOPs) to
    :data:`SUMS`; all three are put back on the way out."""
    from npcnn.fast import rowwise

    real_matmul, real_add, real_apply = np.matmul, rowwise.add_product, optimizer.apply_gradients

    def matmul(a, b, *args, **kwargs):
        start = time.perf_counter()
        out = real_matmul(a, b, *args, **kwargs)
        SUMS.products_s += time.perf_counter() - start
        SUMS.flops += 2.0 * np.size(out) * np.shape(a)[-1]  # a multiply-add per term
        return out

    def add_product(a, b, c, trans="nn"):
        start = time.perf_counter()
        done = real_add(a, b, c, trans)
        SUMS.products_s += time.perf_counter() - start
        if done:  # c (m, n) += op(a) @ op(b), op(a) m x k
            SUMS.flops += 2.0 * c.size * (a.shape[0] if trans[0] == "t" else a.shape[1])
        return done

    def apply_gradients(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real_apply(*args, **kwargs)
        finally:
            SUMS.adam_s += time.perf_counter() - start

    np.matmul, rowwise.add_product = matmul, add_product
    optimizer.apply_gradients = apply_gradients
    try:
        yield SUMS
    finally:
        np.matmul, rowwise.add_product = real_matmul, real_add
        del optimizer.apply_gradients  # the class's method again


def case(net, part, images, labels):
    """(fn, None): one training step of ``net`` (``workloads.NpcnnNetwork``), whose
    ``clock`` counts the seconds of ``part`` (one of :data:`PARTS`) only."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")

    def step():
        with timed(net.optimizer):
            net.train_step(images, labels)

    step.clock = {
        "matrix products": lambda: SUMS.products_s,
        "adam": lambda: SUMS.adam_s,
        "rest": lambda: time.perf_counter() - SUMS.products_s - SUMS.adam_s,
    }[part]
    return step, None
