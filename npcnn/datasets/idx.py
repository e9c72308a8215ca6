"""The IDX file format: how MNIST and Fashion-MNIST are stored, and a reader for it.

Each dataset is four files, usually gzip-compressed (``.gz``)::

    train-images-idx3-ubyte   60000 x 28 x 28 pixels
    train-labels-idx1-ubyte   60000 labels
    t10k-images-idx3-ubyte    10000 x 28 x 28 pixels   (the test set)
    t10k-labels-idx1-ubyte    10000 labels

An IDX file is a small header followed by one array, in C (row-major) order,
every number big-endian::

    bytes 0-1   0x00 0x00       magic number, always zero
    byte  2     type code       0x08 uint8, 0x09 int8, 0x0B int16,
                                0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim            number of dimensions
    next        ndim x uint32   size of each dimension, d0, d1, ...
    rest        d0*d1*...       the values, each of the type above

The training images start ``00 00 08 03  00 00 EA 60  00 00 00 1C  00 00 00 1C``:
uint8, 3 dimensions, 60000 x 28 x 28, then 47,040,000 pixel bytes. ``read_idx``
reads any IDX file, compressed or not; ``idx_bytes`` writes one.

Where the files come from, and how they are checked, is ``npcnn.datasets.mnist``'s business.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

# IDX type code (byte 2 of the header) -> big-endian NumPy dtype
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


_GZIP_MAGIC = b"\x1f\x8b"


class CorruptFileError(ValueError):
    """A data file is damaged: bad gzip or IDX data, truncated, or the wrong SHA-256."""


def open_content(path):
    """Open ``path`` for reading its content, gunzipped if it starts with gzip's magic 1f 8b."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def _read_into(f, buffer):
    """Fill the byte buffer from file ``f``; return how many bytes it got before end of file."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(view):
        n = f.readinto(view[filled:])
        if not n:
            break
        filled += n
    return filled


def _parse_idx(f, path):
    """Read header and data of the IDX stream ``f`` (see the module docstring for the layout)."""
    header = f.read(4)
    if len(header) < 4:
        raise CorruptFileError(f"{path}: truncated IDX file: {len(header)} of 4 header bytes")
    if header[:2] != b"\x00\x00":
        raise CorruptFileError(
            f"{path}: not an IDX file: it starts {header.hex(' ')}, an IDX file starts 00 00"
        )
    code, ndim = header[2], header[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise CorruptFileError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise CorruptFileError(
            f"{path}: truncated IDX header: {len(dims)} of {4 * ndim} bytes of dimensions"
        )
    shape = struct.unpack(f">{ndim}I", dims)  # ndim big-endian uint32
    dtype = IDX_DTYPES[code]
    try:
        array = np.empty(shape, dtype=dtype)
    except (ValueError, MemoryError) as err:
        raise CorruptFileError(
            f"{path}: IDX header claims an array of shape {shape}: {err}"
        ) from err
    got = _read_into(f, array.reshape(-1).view(np.uint8))
    if got < array.nbytes:
        raise CorruptFileError(
            f"{path}: truncated IDX file: the header promises {array.nbytes} bytes of data "
            f"(shape {shape}, {dtype.name}), the file has {got}"
        )
    if f.read(1):
        raise CorruptFileError(f"{path}: IDX file has data past the {array.nbytes} bytes promised")
    return array.astype(dtype.newbyteorder("="), copy=False)  # native byte order


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a NumPy array.

    Returns an array of the shape and type the header gives (uint8 for MNIST), in
    native byte order and writable. Compression is recognised by gzip's magic
    bytes, not the file name. Raises ``CorruptFileError`` for a bad magic number,
    an unknown type code, damaged gzip data, or data shorter or longer than the
    header says, and ``FileNotFoundError`` if there is no such file.
    """
    path = Path(path)
    with open_content(path) as f:
        try:
            return _parse_idx(f, path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise CorruptFileError(f"{path}: damaged gzip data: {err}") from err


def idx_bytes(array) -> bytes:
    """The IDX file content for ``array``: header, then the values big-endian."""
    for code, dtype in IDX_DTYPES.items():
        if array.dtype == dtype.newbyteorder("="):
            header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            return header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    raise ValueError(f"IDX cannot hold dtype {array.dtype}")
