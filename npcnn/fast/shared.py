"""Plain data between the fast tier's processes (``processes.py``, ``npcnn/worker.py``):
arrays in shared memory, the parameters of layers as one flat vector, and
commands as JSON messages over a Unix socket (file descriptors may come along).
Nothing is pickled.
"""

from __future__ import annotations

import json
import mmap
import os
import socket
import tempfile
from math import prod

import numpy as np

MESSAGE_BYTES = 1 << 20  # the longest command or reply


class SharedArrays:
    """Named arrays in one shared-memory file, as NumPy views: ``arrays[name]``.

    ``layout`` maps each name to (shape, dtype name). The file is created
    unlinked (nothing is left behind, even after a crash) and handed to the
    workers as a file descriptor."""

    def __init__(self, layout, fd=None):
        self.layout = {name: (tuple(shape), str(dtype)) for name, (shape, dtype) in layout.items()}
        offsets, total = {}, 0
        for name, (shape, dtype) in self.layout.items():
            offsets[name] = total
            total += -(-prod(shape) * np.dtype(dtype).itemsize // 64) * 64  # 64-byte aligned
        if fd is None:
            where = "/dev/shm" if os.path.isdir("/dev/shm") else None
            with tempfile.TemporaryFile(dir=where) as f:  # unlinked already
                fd = os.dup(f.fileno())
            os.ftruncate(fd, max(total, 1))
        self.fd = fd
        self.buffer = mmap.mmap(fd, max(total, 1))  # shared with every process mapping fd
        self.arrays = {
            name: np.ndarray(shape, dtype, self.buffer, offsets[name])
            for name, (shape, dtype) in self.layout.items()
        }

    def close(self) -> None:
        """Let go of the file (the arrays stay valid while anything holds them)."""
        os.close(self.fd)


def param_slots(layers):
    """Where each parameter of ``layers`` lives in one flat vector:
    [(layer index, parameter index, offset, shape)], and the vector's length."""
    slots, total = [], 0
    for i, layer in enumerate(layers):
        for j, p in enumerate(layer.params):
            slots.append((i, j, total, tuple(p.shape)))
            total += p.size
    return slots, total


def send(sock, message, fds=()) -> None:
    """One command or reply (JSON), with file descriptors if any."""
    socket.send_fds(sock, [json.dumps(message).encode()], list(fds))


def receive(sock):
    """The next message and the file descriptors that came with it; EOFError
    when the other side has gone."""
    data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 1)
    if not data:
        raise EOFError("the other process closed its socket")
    return json.loads(data), fds
