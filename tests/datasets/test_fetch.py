"""npcnn.datasets.fetch: every file hashed once and checked, downloads verified and atomic."""

from __future__ import annotations

import gzip
import os

import pytest

from npcnn.datasets import fetch
from npcnn.datasets import mnist as data

from .fakes import FakeResponse, assert_arrays_equal, fake_urlopen, write_dataset


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
