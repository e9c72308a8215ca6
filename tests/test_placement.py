"""Where the fast tier's threads run (npcnn/fast/placement.py): apart while they
share work, where the OS likes once a thread was starved, never a number changed.

- inside ``apart`` the caller is held on its core and every worker is kept off
  it; afterwards all of them have their CPUs again;
- a thread whose last ``IN_A_ROW`` shares got less than ``STARVED`` of their
  core's time stops the holding for ``FREE_S`` seconds; fewer in a row, or
  shares that ran the whole time, do not;
- with parts that anyone may take (worker processes), the threads are held
  apart busy or not, the caller on a core where it was not starved lately, and
  a share uses one thread per calm CPU (the caller alone: inline);
- a training step with the threads held apart gives the same bits as one
  without (placement never changes a number).
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import npcnn
from npcnn.fast import placement, threads
from npcnn.train import train_step

LINUX_2CPU = placement.current_cpu() is not None and len(os.sched_getaffinity(0)) >= 2
needs_two_cpus = pytest.mark.skipif(not LINUX_2CPU, reason="needs Linux and 2 CPUs")


@pytest.fixture(autouse=True)
def fresh_placement(monkeypatch):
    before = threads.get_threads()
    monkeypatch.setattr(placement, "_free_until", 0.0)
    monkeypatch.setattr(placement._here, "starved", 0, raising=False)
    monkeypatch.setattr(placement, "_busy_until", {})
    monkeypatch.setattr(placement, "dynamic", False)
    yield
    threads.set_threads(before)


def worker_affinities():
    """The allowed CPUs of every registered worker, as the OS reports them."""
    return {tid: set(os.sched_getaffinity(tid)) for tid in list(placement._workers)}


@pytest.fixture
def never_busy(monkeypatch):
    """A test machine loaded by other tests must not switch the holding off mid-test."""
    monkeypatch.setattr(placement, "IN_A_ROW", 10**9)


@needs_two_cpus
def test_apart_holds_the_caller_and_keeps_the_workers_off_its_core(never_busy):
    threads.set_threads(2)
    threads.split_batch(lambda lo, hi: None, 8, 8 * threads.MIN_ELEMENTS)  # start the pool
    assert placement._workers, "the worker registered itself"
    everything = set(os.sched_getaffinity(0))
    with placement.apart():
        held = set(os.sched_getaffinity(0))
        workers = worker_affinities()
    assert len(held) == 1  # the caller: on the one core it was on
    (cpu,) = held
    assert all(cpu not in cpus and cpus for cpus in workers.values())
    assert set(os.sched_getaffinity(0)) == everything  # all its CPUs again


@needs_two_cpus
def test_a_worker_gets_all_its_cpus_back_after_its_share(never_busy):
    threads.set_threads(2)
    threads.split_batch(lambda lo, hi: None, 8, 8 * threads.MIN_ELEMENTS)  # start the pool
    seen = {}

    def work(lo, hi):
        if threading.current_thread() is threading.main_thread():
            end = time.perf_counter() + 0.002  # busy (not starved): leave pieces to the worker
            while time.perf_counter() < end:
                pass
        else:
            seen["inside"] = set(os.sched_getaffinity(0))

    for _ in range(100):  # until the worker took a piece
        threads.split_batch(work, 8, 8 * threads.MIN_ELEMENTS)
        if "inside" in seen:
            break
    everything = set(os.sched_getaffinity(0))
    assert seen["inside"] < everything  # kept off the caller's core while sharing
    assert all(cpus == everything for cpus in worker_affinities().values())


class Clocks:
    """Stand-ins for the clocks ``watch_share`` reads, moved by hand: the judgement
    then depends on what a test says happened, not on how busy the machine is."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def perf_counter(self):
        return self.wall

    def thread_time(self):
        return self.cpu

    @staticmethod
    def monotonic():
        return time.monotonic()


@pytest.fixture
def clocks(monkeypatch):
    fake = Clocks()
    monkeypatch.setattr(placement, "time", fake)
    return fake


def starve(clocks):
    with placement.watch_share():
        clocks.wall += 0.01  # on the clock, off the CPU: what a thread behind another program sees


def run_all_along(clocks):
    with placement.watch_share():
        clocks.wall += 0.01  # on the CPU the whole time
        clocks.cpu += 0.01


def test_starved_shares_in_a_row_let_the_os_place_the_threads(monkeypatch, clocks):
    monkeypatch.setattr(placement, "_workers", {0: frozenset({0, 1})})
    for _ in range(placement.IN_A_ROW - 1):
        starve(clocks)
    run_all_along(clocks)
    for _ in range(placement.IN_A_ROW - 1):
        starve(clocks)
    assert placement._free_until == 0.0  # never IN_A_ROW in a row: a quiet machine's hiccups
    starve(clocks)
    assert placement._free_until > time.monotonic() + placement.FREE_S - 1
    calls = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda *a: calls.append(a), raising=False)
    with placement.apart():
        pass
    assert calls == []  # not held apart while the machine is busy


def test_shares_that_ran_all_along_keep_the_threads_apart(clocks):
    for _ in range(placement.IN_A_ROW + 1):
        run_all_along(clocks)
    assert placement._free_until == 0.0
    with placement.watch_share():
        pass  # too short to judge
    assert placement._free_until == 0.0


def test_parts_anyone_may_take_hold_the_caller_off_a_core_found_busy(monkeypatch, clocks):
    monkeypatch.setattr(placement, "dynamic", True)  # worker processes: small parts, any taker
    monkeypatch.setattr(placement, "_workers", {12345: frozenset({0, 1})})
    monkeypatch.setattr(placement, "current_cpu", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    calls = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda *a: calls.append(a), raising=False)
    for _ in range(placement.IN_A_ROW - 1):
        starve(clocks)
    with placement.apart():
        pass
    assert calls[0] == (0, {1})  # not yet: held where it is
    starve(clocks)
    assert set(placement._busy_until) == {1} and placement._free_until == 0.0
    calls.clear()
    with placement.apart():
        pass
    assert calls[:2] == [(0, {0}), (12345, {1})]  # the caller on the calm core, the worker off it


def test_shares_skip_a_core_found_busy_when_worker_processes_run(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(placement, "_busy_until", {1: time.monotonic() + 60})
    assert placement.threads_for_share(3) == 3  # threads: their own rules
    monkeypatch.setattr(placement, "dynamic", True)
    assert placement.threads_for_share(3) == 2  # one per calm CPU
    later = time.monotonic() + 60
    monkeypatch.setattr(placement, "_busy_until", {1: later, 2: later})
    assert placement.threads_for_share(3) == 1  # the caller alone: the share runs inline
    ran = []
    threads.set_threads(3)
    threads._share(lambda k, slot: ran.append((k, slot, threading.get_ident())), 4, 3)
    assert [(k, slot) for k, slot, _ in ran] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert {ident for _, _, ident in ran} == {threading.get_ident()}
    monkeypatch.setattr(placement, "_busy_until", {1: time.monotonic() - 1})  # an old mark
    assert placement.threads_for_share(3) == 3


def test_placement_never_changes_a_number(monkeypatch):
    images = np.random.default_rng(3).random((50, 28, 28, 1), dtype=np.float32)
    labels = np.arange(50) % 10
    results = []
    for free_until in (0.0, float("inf")):  # held apart; placed by the OS
        monkeypatch.setattr(placement, "_free_until", free_until)
        threads.set_threads(2)
        model = npcnn.seed_cnn(seed=0, kernels="fast")
        optimizer = npcnn.Adam(1e-3)
        losses = [train_step(model, optimizer, images, labels) for _ in range(2)]
        results.append((losses, model.get_weights()))
    (loss_a, params_a), (loss_b, params_b) = results
    assert loss_a == loss_b
    assert all(np.array_equal(a, b) for a, b in zip(params_a, params_b))
