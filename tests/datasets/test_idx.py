"""npcnn.datasets.idx: the IDX format, read and written, against bytes built by hand."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from npcnn.datasets import idx
from npcnn.datasets import mnist as data

from .fakes import idx_bytes

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
