"""Every dataset test runs isolated: no network, no subprocess, empty caches.

No test touches the network or runs a subprocess: the autouse fixture makes any
attempt fail the test, and fakes (``fakes.py``) stand in where a test needs a
download or pip. Most tests use ``tiny``, a synthetic dataset whose checksums
replace the real ones (``mnist.SHA256`` is the hook).
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest

from npcnn.datasets import fetch
from npcnn.datasets import mnist as data

from .fakes import idx_bytes


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
