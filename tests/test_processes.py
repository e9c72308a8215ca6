"""The parts of a training batch in worker processes (npcnn/fast/processes.py,
npcnn/worker.py): other processes, the same numbers.

- a training step whose parts ran in worker processes gives the bits of one
  whose parts ran on threads, float32 and float64, whoever took which part:
  the workers all of them, or the main process some;
- dL/dx too, when asked for;
- a model a worker cannot rebuild (a layer class of the user's) runs on threads;
  so does every model, with a warning, where the workers cannot start;
- a worker's error, or a worker gone, is a RuntimeError naming it, and the
  next step starts new workers; the workers stop with their model, and with
  more than ``MAX_POOLS`` models at once the least recently used one's stop;
- each worker's quota of parts follows the speed it ran at;
- ``set_workers`` and ``NPCNN_WORKERS`` take "threads" (the default) or
  "processes" only.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

import npcnn
from npcnn.fast import processes, shared, threads
from npcnn.layers import Layer
from npcnn.train import train_step

pytestmark = pytest.mark.skipif(not processes.supported(), reason="worker processes: Linux only")


@pytest.fixture(autouse=True)
def two_threads_processes(monkeypatch):
    before = threads.get_threads()
    threads.set_threads(2)
    monkeypatch.setattr(processes, "_workers", "processes")
    monkeypatch.setattr(processes.placement, "dynamic", True)
    yield
    threads.set_threads(before)


def batch(n=50, dtype="float32", seed=3):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1)).astype(dtype), np.arange(n) % 10


def train(workers, dtype="float32", steps=3, model=None):
    """``steps`` training steps of the seed network (seed 0) on one batch, its
    parts on ``workers``."""
    processes.set_workers(workers)
    model = model or npcnn.seed_cnn(seed=0, dtype=dtype, kernels="fast")
    optimizer = npcnn.Adam(1e-3)
    images, labels = batch(dtype=dtype)
    losses = [train_step(model, optimizer, images, labels) for _ in range(steps)]
    return model, losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_processes_give_the_bits_of_threads(dtype):
    in_processes, losses = train("processes", dtype)
    parts = 2 if dtype == "float32" else 4  # 50 images: parts of 25, or of 12 or 13
    assert in_processes.parallel.via is not None and len(in_processes.parallel.cuts) == parts + 1
    on_threads, thread_losses = train("threads", dtype)
    assert on_threads.parallel.via is None
    assert losses == thread_losses
    for a, b in zip(in_processes.get_weights(), on_threads.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_workers_alone_give_the_same_bits(monkeypatch):
    mixed, _ = train("processes")
    monkeypatch.setattr(processes.PartProcesses, "_claim", lambda self: iter(()))
    workers_only, _ = train("processes")
    assert workers_only.parallel.via.mine == []  # the main process took no part
    for a, b in zip(mixed.get_weights(), workers_only.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_dx_is_the_threads_dx():
    images, _ = batch()
    dy = np.random.default_rng(5).standard_normal((50, 10)).astype(np.float32)
    dxs = []
    for workers in ("processes", "threads"):
        processes.set_workers(workers)
        model = npcnn.seed_cnn(seed=0, kernels="fast")
        for _ in range(2):  # the second runs in processes (the first finds the heads)
            model.forward(images, training=True)
            dxs.append(model.backward(dy, need_dx=True))
        assert (model.parallel.via is not None) == (workers == "processes")
    np.testing.assert_array_equal(dxs[1], dxs[3])


class Twice(Layer):
    """A layer of the user's: a worker cannot rebuild it from a config."""

    def forward(self, x):
        return 2 * x

    def backward(self, dy, need_dx=True):
        return 2 * dy


def test_a_layer_a_worker_cannot_rebuild_runs_on_threads():
    model = npcnn.Sequential(
        [Twice(), npcnn.Conv2D(4, 3, activation="relu"), npcnn.MaxPool2D(2), npcnn.Flatten(),
         npcnn.Dense(10)],
        input_shape=(12, 12, 1),
    )  # fmt: skip
    images = np.random.default_rng(0).random((40, 12, 12, 1), dtype=np.float32)
    for _ in range(2):
        model.forward(images, training=True)
    assert model.parallel.via is None and model.parallel.pool is None


def test_a_worker_gone_is_an_error_and_the_next_step_starts_new_ones():
    model, _ = train("processes", steps=2)
    pool = model.parallel.via
    for proc in pool.procs:
        proc.kill()
        proc.wait()
    optimizer = npcnn.Adam(1e-3)
    images, labels = batch()
    with pytest.raises(RuntimeError, match="worker process of the fast tier failed"):
        train_step(model, optimizer, images, labels)
    train_step(model, optimizer, images, labels)
    assert model.parallel.via is pool and all(p.poll() is None for p in pool.procs)


def test_a_workers_error_comes_with_its_traceback():
    model, _ = train("processes", steps=2)
    pool = model.parallel.via
    shared.send(pool.socks[0], {"op": "no such command"})
    with pytest.raises(RuntimeError, match="unknown command 'no such command'"):
        pool._replies()


def test_the_workers_stop_with_their_model():
    model, _ = train("processes", steps=2)
    procs = list(model.parallel.via.procs)
    assert procs and all(p.poll() is None for p in procs)
    del model
    gc.collect()
    deadline = time.monotonic() + 10
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(p.poll() is not None for p in procs)


def test_where_the_workers_cannot_start_the_parts_run_on_threads(monkeypatch):
    def refuse(pool, input_shape):
        raise OSError("no room for a process here")

    monkeypatch.setattr(processes.PartProcesses, "start", refuse)
    with pytest.warns(RuntimeWarning, match="no worker processes .no room for a process here."):
        model, losses = train("processes")
    assert model.parallel.via is None and model.parallel.pool is False
    _, thread_losses = train("threads")
    assert losses == thread_losses


def test_a_start_that_fails_half_way_leaves_no_worker_behind(monkeypatch):
    threads.set_threads(3)  # two workers to start
    started, popen = [], processes.subprocess.Popen

    def second_refused(*args, **kwargs):
        if started:
            raise OSError("no second process")
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(processes.subprocess, "Popen", second_refused)
    with pytest.warns(RuntimeWarning, match="no second process"):
        model, _ = train("processes")
    assert model.parallel.pool is False and started[0].wait(timeout=10) is not None


def test_the_least_recently_used_models_workers_stop(monkeypatch):
    monkeypatch.setattr(processes, "MAX_POOLS", 1)
    first, _ = train("processes", steps=2)
    procs = list(first.parallel.via.procs)
    second, _ = train("processes", steps=2)
    assert first.parallel.via.procs == [] and second.parallel.via.procs
    assert all(p.wait(timeout=10) is not None for p in procs)
    train("processes", steps=1, model=first)  # its workers start again
    assert first.parallel.via.procs and second.parallel.via.procs == []


def test_one_thread_runs_no_process():
    threads.set_threads(1)
    model, _ = train("processes", steps=2)
    assert model.parallel.via is None and model.parallel.pool is None


def test_quotas_follow_the_speeds_measured():
    pool = processes.PartProcesses([], np.float32, 1)
    pool.socks = [None]  # one worker, never started
    assert pool.quotas(6) == [6]  # nothing measured: no limit
    pool.measure([{"parts": [0, 2, 4, 5], "seconds": 0.004}, {"parts": [1, 3], "seconds": 0.004}])
    assert pool.quotas(6) == [2]  # half the main process's speed: a third of the parts
    pool.measure([{"parts": [0, 2, 4], "seconds": 0.003}, {"parts": [1, 3, 5], "seconds": 0.003}])
    assert pool.quotas(6) == [3]  # as fast again (half the old speed, half the new)
    pool.measure([{"parts": [0, 1, 2, 3, 4, 5], "seconds": 0.006}, {"parts": [], "seconds": 0.0}])
    assert pool.quotas(6) == [3]  # a worker that took no part: its speed as it was
    slow = [{"parts": [0, 1, 2, 3, 4], "seconds": 0.005}, {"parts": [5], "seconds": 0.05}]
    for _ in range(5):
        pool.measure(slow)
    assert pool.quotas(6) == [1]  # ten times slower: still one part, to keep measuring


def test_workers_take_threads_or_processes_only(monkeypatch):
    with pytest.raises(ValueError, match="'threads' or 'processes'"):
        processes.set_workers("fibres")
    monkeypatch.setattr(processes, "_workers", None)
    monkeypatch.setenv("NPCNN_WORKERS", "gpu")
    with pytest.raises(ValueError, match="NPCNN_WORKERS must be 'threads' or 'processes'"):
        processes.get_workers()
    monkeypatch.setenv("NPCNN_WORKERS", "processes")
    assert processes.get_workers() == "processes"
    monkeypatch.delenv("NPCNN_WORKERS")
    monkeypatch.setattr(processes, "_workers", None)
    assert processes.get_workers() == "threads"  # the default


def test_shared_arrays_are_seen_by_another_mapping():
    layout = {"a": ((3, 4), "float32"), "b": ((5,), "float64")}
    first = shared.SharedArrays(layout)
    second = shared.SharedArrays(layout, os.dup(first.fd))  # what a worker maps
    first.arrays["a"][...] = np.arange(12).reshape(3, 4)
    first.arrays["b"][...] = 0.5
    np.testing.assert_array_equal(second.arrays["a"], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(second.arrays["b"], np.full(5, 0.5))
    first.close()
    second.close()
