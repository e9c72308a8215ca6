"""The step's breakdown (``benchmarks/breakdown.py``): every matrix product of the
fast tier's training step is counted, and each part is timed by its own clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from benchmarks import breakdown, report
from benchmarks import workloads as wl
from benchmarks.worker import run_block


@pytest.mark.parametrize("dtype, n", [("float32", 50), ("float64", 50), ("float32", 7)])
def test_every_product_of_the_step_is_counted(dtype, n):
    """The products' FLOPs add up to the step's (``workloads.train_flops``): none
    escapes the wrappers (a product written ``a @ b`` in the fast tier would)."""
    from npcnn.fast import threads

    net = wl.NpcnnNetwork(dtype)
    images, labels = wl.mnist_like_batch(n, dtype)
    step, _ = breakdown.case(net, "matrix products", images, labels)
    sums, before = breakdown.SUMS, threads.get_threads()
    try:
        for count in (1, 2):
            threads.set_threads(count)
            flops, products, adam = sums.flops, sums.products_s, sums.adam_s
            step()
            assert sums.flops - flops == wl.train_flops(n), (dtype, n, count)
            assert sums.products_s > products and sums.adam_s > adam
    finally:
        threads.set_threads(before)


def test_the_wrappers_are_there_only_while_a_step_of_the_section_runs():
    from npcnn.fast import rowwise

    net = wl.NpcnnNetwork("float32")
    real = (np.matmul, rowwise.add_product, net.optimizer.apply_gradients)
    with breakdown.timed(net.optimizer):
        assert np.matmul is not real[0] and rowwise.add_product is not real[1]
        assert net.optimizer.apply_gradients != real[2]
    assert (np.matmul, rowwise.add_product, net.optimizer.apply_gradients) == real
    with pytest.raises(RuntimeError), breakdown.timed(net.optimizer):
        raise RuntimeError("a step that fails")
    assert (np.matmul, rowwise.add_product, net.optimizer.apply_gradients) == real


def test_each_part_reads_its_own_clock_and_the_parts_add_up():
    net = wl.NpcnnNetwork("float32")
    images, labels = wl.mnist_like_batch(8, "float32")
    steps = {part: breakdown.case(net, part, images, labels)[0] for part in breakdown.PARTS}
    before = [steps[p].clock() for p in breakdown.PARTS]
    start = time.perf_counter()
    steps["rest"]()  # any part's step runs them all
    wall = time.perf_counter() - start
    spent = [steps[p].clock() - b for p, b in zip(breakdown.PARTS, before)]
    assert spent[0] > 0 and spent[1] > 0 and spent[2] > 0
    assert abs(sum(spent) - wall) < 0.05 * wall  # products + Adam + (wall - both)
    with pytest.raises(ValueError, match="part must be one of"):
        breakdown.case(net, "softmax", images, labels)


def test_run_block_times_a_case_by_its_clock():
    ticks = []

    def fn():
        ticks.append(1.0)

    fn.clock = lambda: 2.0 * len(ticks)  # two "seconds" a call, whatever the wall clock says
    assert run_block(fn, None, reps=4, settle=1) == 2.0
    assert run_block(fn, None, reps=2, clock=lambda: 0.0) == 0.0  # an explicit clock wins


def test_the_report_says_what_the_one_core_target_leaves_for_the_rest():
    def row(name, dtype, ms, **extra):
        return {
            "section": "breakdown",
            "name": name,
            "kind": "breakdown",
            "impl": "npcnn",
            "cores": "one",
            "dtype": dtype,
            "batch": 50,
            "median_s": ms / 1e3,
            **extra,
        }

    res = [
        row("matrix products", "float32", 20.0, gflops_per_s=200.0, pct_of_peak=80.0),
        row("adam", "float32", 4.0),
        row("rest", "float32", 8.0),
        {
            "section": "headline",
            "name": "seed cnn",
            "kind": "train step",
            "batch": 50,
            "impl": "tf-function",
            "cores": "one",
            "dtype": "float32",
            "median_s": 0.025,
        },
    ]
    lines = report.breakdown_table({"results": res, "machine": {}})
    row32 = "| float32 | 32.0 ms | 20.0 ms (200 GFLOP/s, 80% of the peak) | 4.000 ms | 8.000 ms |"
    assert lines[2] == row32
    assert "alone take 0.96x the whole one-core step" in lines[-1]  # 24 / 25
    assert "1.3x of it leaves 8.500 ms for the rest, which took 8.000 ms" in lines[-1]
    assert report.breakdown_table({"results": res[1:], "machine": {}}) == []  # a part missing
