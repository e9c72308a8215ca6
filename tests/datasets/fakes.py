"""Stand-ins the dataset tests share: IDX files built by hand, dataset folders, a
fake network that serves or fails."""

from __future__ import annotations

import gzip
import io
import struct
import urllib.error
import urllib.request

import numpy as np

from npcnn.datasets import mnist as data


def idx_bytes(array, code):
    """An IDX file's content, built by hand from the format's definition."""
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


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
