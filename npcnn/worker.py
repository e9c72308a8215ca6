"""A worker process of the fast tier (``npcnn/fast/processes.py``): runs the
head layers on the parts of each batch it takes, until the main process closes
its socket. (It rebuilds layers from their configs, which the fast tier itself
cannot do: hence here, above the model.)

Started as ``python -m npcnn.worker SOCKET_FD CLAIMS_FD`` with BLAS on one
thread. Commands (JSON, ``fast/shared.py``), each answered ``{"ok": ...}`` or
``{"error": traceback}``:

- ``build``: the head layers from their configs, for an input shape and dtype;
- ``attach``: the shared arrays (their file comes with the message);
- ``forward``: take parts from the claims pipe, run them, write their outputs;
- ``backward``: the backward pass of the parts this worker ran forward,
  writing their dx and their weight gradients (flat, ``param_slots`` order).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback

import numpy as np

from .fast.parallel import DataParallel, backward_through
from .fast.shared import SharedArrays, param_slots, receive, send
from .model import fast_blocks
from .modelfile import layer_from_config


class Worker:
    """The head layers, their replicas (its i-th part of a batch on replica i),
    and the shared arrays."""

    def __init__(self, claims_fd):
        self.claims_fd = claims_fd
        self.parallel = None  # a DataParallel over the head layers: its replicas per part
        self.shared = None
        self.mine = []  # the parts this worker ran in the last forward pass

    def build(self, layers, input_shape, dtype):
        """The head layers from their configs, built for ``input_shape``."""
        heads = [layer_from_config(entry, "worker") for entry in layers]
        shape, rng = tuple(input_shape), np.random.default_rng(0)
        for layer in heads:
            shape = tuple(layer.build(shape, rng, np.dtype(dtype)))
        self.parallel = DataParallel(heads, fast_blocks)

    def attach(self, layout, fd):
        """Map the shared arrays of file ``fd``; the layers' parameters become views of them."""
        if self.shared is not None:
            self.shared.close()
        self.shared = SharedArrays(layout, fd)
        params = self.shared.arrays["params"]
        for i, j, offset, shape in param_slots(self.parallel.layers)[0]:
            size = int(np.prod(shape))
            self.parallel.layers[i].params[j] = params[offset : offset + size].reshape(shape)

    def forward(self, cuts, training, quota):
        """Parts from the claims pipe (``quota`` at most) through the blocks; their
        outputs into the shared ``y``. Returns the parts taken."""
        arrays, self.mine = self.shared.arrays, []
        for layer in self.parallel.layers:
            layer.training = training
        for k in self.claim(quota):  # its i-th part on its replica i: warm buffers
            blocks = self.parallel.replica(len(self.mine))[1]
            y = arrays["x"][cuts[k] : cuts[k + 1]]
            for block in blocks:
                y = block.forward(y)
            arrays["y"][cuts[k] : cuts[k + 1]] = y
            self.mine.append(k)
        return self.mine

    def backward(self, cuts, need_dx):
        """The backward pass of the parts this worker ran forward: their dx and
        weight gradients into the shared arrays. Returns them and the seconds taken."""
        arrays, start = self.shared.arrays, time.perf_counter()
        for slot, k in enumerate(self.mine):
            copies, blocks = self.parallel.replica(slot)
            d = backward_through(blocks, arrays["dy"][cuts[k] : cuts[k + 1]], need_dx)
            if need_dx:
                arrays["dx"][cuts[k] : cuts[k + 1]] = d
            for i, j, offset, shape in param_slots(copies)[0]:  # part k's weight gradients
                grads = arrays["grads"][k, offset : offset + int(np.prod(shape))]
                grads[...] = copies[i].grads[j].reshape(-1)
        return {"parts": self.mine, "seconds": time.perf_counter() - start}

    def claim(self, quota):
        """Part numbers from the claims pipe, one at a time, until it is empty
        or ``quota`` were taken."""
        for _ in range(quota):
            try:
                taken = os.read(self.claims_fd, 1)
            except BlockingIOError:
                return
            if not taken:
                return
            yield taken[0]


def serve(sock, claims_fd) -> None:
    """Answer commands until the main process goes."""
    worker = Worker(claims_fd)
    while True:
        try:
            message, fds = receive(sock)
        except (EOFError, OSError):
            return
        op = message.pop("op")
        try:
            if op == "build":
                result = worker.build(**message)
            elif op == "attach":
                result = worker.attach(message["layout"], fds[0])
            elif op == "forward":
                result = worker.forward(message["cuts"], message["training"], message["quota"])
            elif op == "backward":
                result = worker.backward(message["cuts"], message["need_dx"])
            else:
                raise ValueError(f"unknown command {op!r}")
            send(sock, {"ok": result})
        except Exception:  # noqa: BLE001 -- reported to the main process
            send(sock, {"error": traceback.format_exc()})


def main(argv) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    sock = socket.socket(fileno=int(argv[0]))
    serve(sock, int(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
