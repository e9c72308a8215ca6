"""Checkpoints: written atomically, and a damaged file is a ``ValueError``, never another error."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from npcnn import Adam, Dense, Sequential
from npcnn.checkpoint import load_checkpoint, save_checkpoint

from .helpers import fuzz, seed_cnn_checkpoint


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint intact and no temp file."""
    path = tmp_path / "ck.npz"
    seed_cnn_checkpoint(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        seed_cnn_checkpoint(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "small.npz"
    model = Sequential([Dense(2)], input_shape=(3,), seed=0)
    save_checkpoint(path, model.named_params(), Adam().get_state(), None, {"step": 1})
    return path.read_bytes()


@fuzz(40)
@given(data=st.data())
def test_a_damaged_checkpoint_is_a_value_error(data, small_checkpoint):
    content = bytearray(small_checkpoint)
    cut = data.draw(st.integers(0, len(content)))
    if data.draw(st.booleans()):
        content = content[:cut]
    elif cut < len(content):
        content[cut] ^= data.draw(st.integers(1, 255))
    fd, name = tempfile.mkstemp(suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(content))
        try:
            out = load_checkpoint(name)
        except ValueError:
            return
        assert set(out) == {"weights", "optimizer", "rng", "meta", "architecture"}
    finally:
        os.unlink(name)
