"""Getting data files safely: SHA-256 verification and atomic, verified downloads.

Every file is checked against the SHA-256 of its *uncompressed* content
(re-compressed copies of the same data pass) before it is used, and each file's
digest is remembered for the life of the process, so loading twice hashes once.
A download goes through ``npcnn.atomicwrite.atomic_write``: a temporary file
beside its destination, fsynced and verified, and only then renamed into place,
so an interrupted or wrong download never leaves a file behind. Downloads show a
``tqdm`` progress bar on stderr when asked.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import urllib.request
import zlib
from pathlib import Path

from ..atomicwrite import atomic_write
from ..bars import progress_bar
from ..validation import check_bool
from .idx import CorruptFileError, idx_bytes, open_content

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60  # urllib: seconds a connect or a read may stall
_HASH_CHUNK = 1 << 20  # bytes hashed per step
_DOWNLOAD_CHUNK = 1 << 16  # bytes read from the network per step


# (device, inode, size, mtime, part) of a file -> SHA-256 of its content, so that
# a file (or a part of one, e.g. an array in an .npz) is hashed once per process
_DIGESTS: dict[tuple, str] = {}


def file_key(path, part=""):
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, part)


def _sha256_of_content(path) -> str:
    """SHA-256 (hex) of a file's content, gunzipped first if it is gzip-compressed."""
    digest = hashlib.sha256()
    with open_content(path) as f:
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
    key = file_key(path)
    if key not in _DIGESTS:
        try:
            _DIGESTS[key] = _sha256_of_content(path)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise CorruptFileError(f"{path}: damaged gzip data: {err}") from err
    _check_sha256(_DIGESTS[key], expected_sha256, path)


def verify_array(array, expected_sha256, what, key):
    """Check that ``array`` written as an IDX file would have this SHA-256."""
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(idx_bytes(array)).hexdigest()
    _check_sha256(_DIGESTS[key], expected_sha256, what)


def write_verified(dest, chunks, expected_sha256, what):
    """Write the byte ``chunks`` to ``dest`` so that ``dest`` is either untouched or verified.

    ``npcnn.atomicwrite.atomic_write`` does the writing; the temporary file is
    checked against ``expected_sha256`` before it is renamed onto ``dest``.
    """

    def write(f):
        for chunk in chunks:
            f.write(chunk)

    def verify(tmp):
        try:
            verify_file(tmp, expected_sha256)
        except CorruptFileError as err:
            raise CorruptFileError(f"{what}: {err}; nothing was written to {dest}") from err

    atomic_write(dest, write, verify=verify)


def _response_chunks(response, label, progress):
    """Yield the body of an HTTP ``response``, with a progress bar on stderr if asked."""
    total = int(response.headers.get("Content-Length") or 0) or None
    options = dict(unit="B", unit_scale=True, unit_divisor=1024, disable=not progress)
    with progress_bar(total, label, **options) as bar:
        while chunk := response.read(_DOWNLOAD_CHUNK):
            bar.update(len(chunk))
            yield chunk


def download(url, dest, expected_sha256, *, progress=False):
    """Download ``url`` to ``dest`` atomically, verified against ``expected_sha256``.

    The SHA-256 is that of the uncompressed content when the file is gzip data.
    Raises ``OSError`` (``urllib.error.URLError`` included) or
    ``http.client.HTTPException`` for network trouble and ``CorruptFileError``
    if the bytes fail verification; ``dest`` is never left half-written.
    """
    check_bool(progress, "progress")
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        chunks = _response_chunks(response, Path(dest).name, progress)
        write_verified(dest, chunks, expected_sha256, f"download of {url}")
