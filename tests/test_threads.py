"""The fast tier's threads (npcnn/fast/threads.py): they split the work, never a number.

- ``split_batch`` covers the batch exactly once, in parallel, runs small passes
  inline, and raises a part's exception only after every part finished;
- the thread count comes from ``NPCNN_THREADS``, the CPU affinity or
  ``set_threads``, and bad values are refused with a clear message;
- a forked child (multiprocessing's default on Linux) still works;
- the seed network's training step and inference give the same bits on 1, 2
  and 3 threads, and the fused block's routing keeps inf and NaN gradients
  exactly where the readable composition puts them.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import npcnn
from npcnn import fast, ops
from npcnn.fast import cblas, fused, placement, threads
from npcnn.train import train_step


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    before = threads.get_threads()
    monkeypatch.setattr(placement, "dynamic", False)  # the threads' own rules, busy machine or not
    monkeypatch.setattr(placement, "_busy_until", {})
    yield
    threads.set_threads(before)


def record_parts(n, elements, together=1):
    """The parts ``split_batch`` made and the threads that ran them; with
    ``together`` > 1, every part waits until that many run at the same time."""
    seen, names, lock = [], set(), threading.Lock()
    barrier = threading.Barrier(together, timeout=10)

    def work(lo, hi):
        with lock:
            seen.append((lo, hi))
            names.add(threading.current_thread().name)
        if together > 1:
            barrier.wait()  # BrokenBarrierError unless the parts run in parallel

    threads.split_batch(work, n, elements)
    return sorted(seen), names


@pytest.mark.parametrize("count", [2, 3, 4])
@pytest.mark.parametrize("n", [1, 2, 5, 50])
def test_split_batch_covers_the_batch_once(count, n):
    threads.set_threads(count)
    parts, names = record_parts(n, count * threads.MIN_ELEMENTS, together=min(count, n))
    covered = [i for lo, hi in parts for i in range(lo, hi)]
    assert covered == list(range(n))  # every image once, none twice
    assert len(parts) == min(count, n)
    assert len(names) == min(count, n)  # each part on its own thread, all at once
    assert threading.current_thread().name in names  # the caller works too


def test_small_passes_and_one_thread_run_inline():
    threads.set_threads(4)
    parts, names = record_parts(50, 2 * threads.MIN_ELEMENTS - 1)
    assert parts == [(0, 50)] and names == {threading.current_thread().name}
    parts, _ = record_parts(50, 3 * threads.MIN_ELEMENTS, together=3)  # one part per 32K
    assert parts == [(0, 16), (16, 33), (33, 50)]
    threads.set_threads(1)
    parts, names = record_parts(50, 10**9)
    assert parts == [(0, 50)] and names == {threading.current_thread().name}
    threads.set_threads(4)
    done = []
    threads.split_batch(lambda lo, hi: done.append((lo, hi)), 50, 10**9, xp=object())
    assert done == [(0, 50)]  # another array library's (CuPy's) work is never split


@pytest.mark.parametrize("failing_part", [0, 1])
def test_an_error_in_any_part_is_raised_after_all_parts_finished(failing_part):
    threads.set_threads(2)
    started, finished = [], []

    def work(lo, hi):
        started.append(lo)
        time.sleep(0.01)  # the other thread is still at work when this one fails
        if (lo == 0) == (failing_part == 0):
            raise RuntimeError(f"part {lo}..{hi} failed")
        finished.append(lo)

    with pytest.raises(RuntimeError, match="failed"):
        threads.split_batch(work, 10, 2 * threads.MIN_ELEMENTS)
    assert len(started) == 2  # both threads had a part under way ...
    assert len(finished) == 1  # ... and the one that did not fail ran to its end
    time.sleep(0.05)
    assert len(started) == 2  # nothing started after the error was raised


def test_ctrl_c_while_waiting_still_waits_for_every_part(monkeypatch):
    """A KeyboardInterrupt that lands while the caller waits for the other parts
    is raised only after they finished: nothing writes into the arrays after."""
    threads.set_threads(2)
    release, done = threading.Event(), []
    real_wait, calls = threads.wait, []

    def interrupted_wait(futures):
        calls.append(1)
        if len(calls) == 1:
            release.set()  # let the worker finish, then "press Ctrl-C"
            raise KeyboardInterrupt
        return real_wait(futures)

    def work(lo, hi):
        if lo > 0:
            release.wait(10)
            time.sleep(0.05)
        done.append((lo, hi))

    monkeypatch.setattr(threads, "wait", interrupted_wait)
    with pytest.raises(KeyboardInterrupt):
        threads.split_batch(work, 4, 2 * threads.MIN_ELEMENTS)
    assert sorted(done) == [(0, 2), (2, 4)] and len(calls) == 2


def test_a_split_inside_a_part_runs_inline_instead_of_waiting_forever():
    """With 2 threads the pool has one worker: a part that splits again must not
    queue behind itself."""
    threads.set_threads(2)
    inner = []

    def work(lo, hi):
        threads.split_batch(lambda a, b: inner.append((lo, a, b)), 4, 4 * threads.MIN_ELEMENTS)

    caller = threading.Thread(target=threads.split_batch, args=(work, 2, 2 * threads.MIN_ELEMENTS))
    caller.daemon = True  # if it hangs, the test fails instead of hanging too
    caller.start()
    caller.join(10)
    assert not caller.is_alive(), "a split inside a part waited for the pool forever"
    assert sorted(inner)[-1] == (1, 0, 4)  # the worker's part ran its split inline


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_threads_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        threads.set_threads(bad)


def test_thread_count_from_environment_and_affinity(monkeypatch):
    monkeypatch.setenv("NPCNN_THREADS", "3")
    assert threads._default_threads() == 3
    for bad in ("0", "two", "-2"):
        monkeypatch.setenv("NPCNN_THREADS", bad)
        with pytest.raises(ValueError, match="NPCNN_THREADS must be an int >= 1"):
            threads._default_threads()
    monkeypatch.delenv("NPCNN_THREADS")
    assert threads._default_threads() == min(len(os.sched_getaffinity(0)), 8)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_can_still_split_work():
    threads.set_threads(2)
    record_parts(10, 2 * threads.MIN_ELEMENTS)  # the parent's pool is running
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads
        signal.alarm(20)  # a hang would otherwise never end
        try:
            parts, _ = record_parts(10, 2 * threads.MIN_ELEMENTS)
            os._exit(0 if parts == [(0, 5), (5, 10)] else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def bits(a):
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threads_change_no_number_in_training_or_inference(dtype):
    """Three Adam steps at batch 50 and a prediction on 200 images, on 1, 2 and
    3 threads: every weight, loss and probability the same, bit for bit."""
    rng = np.random.default_rng(0)
    x = rng.random((3, 50, 28, 28, 1)).astype(dtype)
    labels = rng.integers(0, 10, (3, 50))
    test_x = rng.random((200, 28, 28, 1)).astype(dtype)
    results = {}
    for count in (1, 2, 3):
        threads.set_threads(count)
        model = npcnn.seed_cnn(seed=1, dtype=dtype)
        optimizer = npcnn.Adam(1e-3)
        losses = [float(train_step(model, optimizer, xb, lb)) for xb, lb in zip(x, labels)]
        results[count] = (losses, model.get_weights(), model.predict(test_x))
    for count in (2, 3):
        assert results[count][0] == results[1][0]
        for a, b in zip(results[count][1], results[1][1]):
            np.testing.assert_array_equal(bits(a), bits(b))
        np.testing.assert_array_equal(bits(results[count][2]), bits(results[1][2]))


def test_fused_routing_keeps_inf_and_nan_where_the_composition_puts_them(monkeypatch):
    """The fused block selects each window's gradient on its bits: inf and NaN
    reach the winning cell only, as through ops' max-pool and ReLU. Compared
    on the gradient wrt the convolution's output, dz, bit for bit."""
    threads.set_threads(2)
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (40, 10, 10, 2)).astype(np.float32)  # ties everywhere
    w = rng.integers(-1, 2, (3, 3, 2, 16)).astype(np.float32)
    b = rng.integers(-1, 2, 16).astype(np.float32)
    y, cache = fast.conv2d_relu_maxpool2d_forward(x, w, b, 1, "same", 2, 2)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    for value in (np.inf, -np.inf, np.nan):
        dy.flat[rng.choice(dy.size, 50, replace=False)] = value
    monkeypatch.setattr(fused, "convolve_backward", lambda dz, *args: dz)
    got = fast.conv2d_relu_maxpool2d_backward(dy, cache)
    z, _ = ops.conv2d_forward(x, w, b, 1, "same")
    r, relu_cache = ops.relu_forward(z)
    _, pool_cache = ops.maxpool2d_forward(r, 2, 2)
    want = ops.relu_backward(ops.maxpool2d_backward(dy, pool_cache), relu_cache)
    assert np.isnan(want).sum() > 0 and np.isinf(want).sum() > 0
    np.testing.assert_array_equal(bits(got), bits(want))


def test_a_block_reuses_its_workspace_and_its_gradients_stay_right():
    """The fused block writes its convolution's big arrays (conv2: the row-wise
    width windows, the output, their gradients) into its own buffers, step after
    step (no fresh pages per step),
    and the numbers are those of the same calls without a workspace."""
    rng = np.random.default_rng(7)
    model = npcnn.seed_cnn(seed=2, dtype="float64")
    x, labels = rng.random((2, 16, 28, 28, 1)), rng.integers(0, 10, (2, 16))  # one part
    train_step(model, npcnn.Adam(1e-3), x[0], labels[0])
    _, blocks = model.parallel.replica(0)
    conv1, conv2 = blocks[0].conv, blocks[1]
    buffers = {name: id(a) for name, a in conv2.workspace.items()}
    scratch = set() if cblas.available() else {"y_scratch", "dxw_scratch"}  # see cblas.py
    assert set(buffers) == {"xw", "y", "dy", "dxw", "dz_pad", "route", "route_wins"} | scratch
    probs = model.forward(x[1])
    _, cache = ops.sparse_categorical_crossentropy_forward(probs, labels[1], reduction="sum")
    model.backward(ops.sparse_categorical_crossentropy_backward(1.0, cache), need_dx=False)
    assert {name: id(a) for name, a in conv2.workspace.items()} == buffers  # reused
    # conv2's block on this step's input, without a workspace: the same gradients
    pooled1 = fast.conv2d_relu_maxpool2d_forward(x[1], *conv1.params, 1, "same")[0]
    y, block_cache = fast.conv2d_relu_maxpool2d_forward(pooled1, *conv2.conv.params, 1, "same")
    dy = rng.standard_normal(y.shape)
    want = fast.conv2d_relu_maxpool2d_backward(dy, block_cache)
    got = fast.conv2d_relu_maxpool2d_backward(dy, conv2.cache)
    for g, e in zip(got, want):
        np.testing.assert_array_equal(g, e)
