"""Data parallelism: the whole network on every core, one part of the batch per thread.

A training batch of 50 images is cut into parts of at most ``PART`` images
(two parts of 25; in float64, whose arrays are twice as big, four of 12 or 13).
Each part runs through every layer that sees images (the convolutions and
poolings, where the work is), forward and then backward, on
whichever thread takes it (``threads.run_parts``), with BLAS on one thread; the
parts' weight gradients are then summed. Once the activations are flat
vectors, the parts are joined and the rest (the Dense layers) runs once on the
whole batch (``tail_forward``)::

    part 0 (images 0..24)  -> thread 0: conv blocks -+                 +- conv grads_0 -+
                                                     +- dense layers --+                +- summed
    part 1 (images 25..49) -> thread 1: conv blocks -+  (whole batch)  +- conv grads_1 -+

Why not let BLAS use the cores inside each matrix product instead (the
classic way, and what this tier once did)? Every multi-threaded BLAS call, and
every memory-bound pass split over threads, ends with all threads waiting for
the slowest: hundreds of meetings per step. On a quiet machine that costs
little; when any other program wants a core, a thread the OS has paused holds
up all the others at every meeting, and the step took 10x longer. Here the
threads meet twice per step, and a paused thread's part is taken by another.

The numbers: a part's forward and backward are the same operations as the
whole batch's, on fewer images (a matrix product may round a row differently
among another number of rows); a convolution's weight gradient is summed part
by part (``grads_0 + grads_1``) instead of inside one matrix product: a
different order of the same sums, within the rounding bound the parity tests
derive.
The parts depend on the batch size only, never on the thread count: 1, 2 or
8 threads give the same bits.

Each part has its own *replica* of the layers: shallow copies that share the
parameters (the same live arrays) and keep their own cache and gradients. The
first part runs on the layers themselves, so a batch of one part (up to
``PART`` images) leaves every layer holding its cache, as a plain loop would.

With ``NPCNN_WORKERS=processes`` (Linux) the parts of a training batch run in
a worker process and this one instead of on threads (``processes.py``), from
the second batch of a shape on (the first finds which blocks see images): the
same parts, the same bits. The tail and the sums stay here.
"""

from __future__ import annotations

import copy
import warnings
from math import prod

import numpy as np

from ..backend import get_array_module
from ..validation import check_bool
from . import processes
from .shared import param_slots
from .threads import blas_on_one_thread, get_threads, inline_splits, run_parts, split_batch

PART = 32  # float32 images per part at most (a training batch of 50: two parts of 25)
GROUP = 256  # images per group in predict: their flat features go through the dense layers at once


def part_cuts(n: int, xp=np, itemsize: int = 4) -> list[int]:
    """Where the batch of ``n`` images is cut: parts of at most ``PART`` images in
    float32 (``PART * 4 // itemsize`` for wider numbers: 16 in float64, whose
    arrays are twice as big), as even as can be (float32: 50 -> [0, 25, 50]);
    one part for another array library."""
    most = max(1, PART * 4 // itemsize)
    count = max(1, -(-n // most)) if xp is np else 1
    return [n * p // count for p in range(count + 1)]


class DataParallel:
    """Runs ``layers`` as ``make_blocks(layers)`` (the fast tier's blocks) on
    parts of the batch, in parallel: ``forward``, ``backward`` (which fills each
    layer's ``grads`` with the sum over the parts) and ``predict``."""

    def __init__(self, layers, make_blocks, rebuildable=None):
        self.layers = list(layers)
        self.make_blocks = make_blocks
        self.rebuildable = rebuildable  # layer -> whether a worker process can rebuild it
        self.replicas = []  # one per training part: (the layers' copies, their blocks)
        self.workers = []  # one per thread running inference chunks: the same
        self.cuts = None  # the parts of the last forward batch
        self.split = None  # the first block the parts did not run (the tail's first)
        self.heads = None  # (input shape, output shape) of the blocks the parts run
        self.pool = None  # (key, worker processes for the parts), once used; False: none here
        self.via = None  # the pool that ran the last forward batch, or None: threads

    def replica(self, k, store=None):
        """Replica ``k`` of ``store`` (the training parts' by default), made on
        first use: (the layers' copies, their blocks). The copies are given the
        layers' current parameters (``to()`` or ``build`` may have replaced them)."""
        store = self.replicas if store is None else store
        while len(store) <= k:
            first = store is self.replicas and not store  # the layers themselves
            copies = self.layers if first else [copy.copy(layer) for layer in self.layers]
            store.append((copies, self.make_blocks(copies)))
        for twin, layer in zip(store[k][0], self.layers):
            twin.params, twin.state, twin.training = layer.params, layer.state, layer.training
        return store[k]

    def forward(self, x, training=False):
        """The blocks that see images on each part of ``x`` (N, ...), the rest on
        the parts joined (:func:`DataParallel.tail_forward`); the output (N, ...).

        In training, a layer whose output depends on the whole batch
        (``needs_whole_batch``: BatchNormalization's batch statistics, Dropout's
        mask drawn from one generator) makes the batch one part, as Keras
        computes it: statistics over every image, a mask that depends on the
        seed alone.
        """
        training = check_bool(training, "training")
        cuts = part_cuts(len(x), get_array_module(x), x.dtype.itemsize)
        if training and any(layer.needs_whole_batch for layer in self.layers):
            cuts = [0, len(x)]
        pool = self.part_processes(x, cuts)
        if pool is not None:
            try:
                return self.tail_forward(self.forward_in_processes(pool, x, cuts, training))
            except processes.WorkersUnavailable as exc:  # this machine: threads, same bits
                warnings.warn(f"npcnn: no worker processes ({exc}); the parts run on threads",
                              RuntimeWarning, stacklevel=3)  # fmt: skip
                self.pool = False
        replicas = [self.replica(k)[1] for k in range(len(cuts) - 1)]
        y, split = _heads_forward(x, cuts, lambda k, slot: replicas[k], whole=len(replicas) == 1)
        self.cuts, self.split, self.via = cuts, split, None
        if len(cuts) > 2 and 0 < split < len(replicas[0]):
            self.heads = (tuple(x.shape[1:]), tuple(y.shape[1:]))
        return self.tail_forward(y)

    def head_layers(self):
        """The layers of the blocks the parts run (the first ``split`` blocks)."""
        blocks = self.replicas[0][1][: self.split]
        return [layer for block in blocks for layer in getattr(block, "layers", (block,))]

    def part_processes(self, x, cuts):
        """The worker processes to run the parts of ``x`` in, or None (threads):
        when asked for (``processes.get_workers``), on two threads or more, for
        a NumPy batch of more than one part whose head blocks an earlier batch
        of the same shape found (``self.heads``), made of layers a worker can
        rebuild; never again for this model once they failed to start."""
        if processes.get_workers() != "processes" or not processes.supported():
            if self.pool:  # asked for threads again: the workers are not needed
                self.pool[1].stop()
                self.pool = None
            return None
        if get_threads() < 2 or len(cuts) <= 2 or get_array_module(x) is not np:
            return None
        if self.pool is False or not self._heads_can_move(x, cuts):
            return None
        layers = self.head_layers()
        wanted = (tuple(map(id, layers)), x.dtype, get_threads() - 1)
        if self.pool is None or self.pool[0] != wanted:
            if self.pool is not None:
                self.pool[1].stop()
            self.pool = (wanted, processes.PartProcesses(layers, x.dtype, get_threads() - 1))
        return self.pool[1]

    def _heads_can_move(self, x, cuts) -> bool:
        """Whether a worker process can run the head blocks on ``x``'s images:
        found for this shape, every layer one a worker can rebuild (the model's
        ``rebuildable``: npcnn's own classes, without state), in at most
        ``processes.MAX_PARTS`` parts."""
        if self.heads is None or self.heads[0] != tuple(x.shape[1:]) or self.rebuildable is None:
            return False
        if len(cuts) - 1 > processes.MAX_PARTS:
            return False
        return all(self.rebuildable(layer) for layer in self.head_layers())

    def forward_in_processes(self, pool, x, cuts, training):
        """The head blocks on the parts ``cuts`` of ``x``, taken by the worker
        processes and this one (``processes.py``); the outputs joined."""
        pool.prepare(x, len(cuts) - 1, self.heads[1])
        split = self.split

        def run_mine(k, i):  # part k, this process's i-th: on replica i
            y, blocks = x[cuts[k] : cuts[k + 1]], self.replica(i)[1]
            for block in blocks[:split]:
                y = block.forward(y)
            return y

        with blas_on_one_thread(), inline_splits():  # this process's parts on this thread alone
            y = pool.forward(x, cuts, training, run_mine)
        self.cuts, self.via = cuts, pool
        return y

    def tail_forward(self, y, blocks=None, split=None):
        """The blocks from ``split`` on (the Dense layers and what follows) once, on
        the whole batch, from the calling thread with BLAS on one thread (a big
        Dense layer shares its column blocks over the threads: ``dense.py``):
        dense1's 3.2 M weights are read once per pass instead of once per part,
        and its gradient is one per batch, not one per part summed (a 13 MB
        array each). ``blocks``, ``split``: the training parts' (the layers
        themselves) and the last forward's, by default."""
        blocks = self.replicas[0][1] if blocks is None else blocks
        split = self.split if split is None else split
        if split < len(blocks):
            with blas_on_one_thread():
                for block in blocks[split:]:
                    y = block.forward(y)
        return y

    def backward(self, dy, need_dx=True):
        """The tail's backward pass on the whole batch, then each part's through its
        blocks; each layer's ``grads`` become the sum of its parts' gradients;
        dL/dx (or None), concatenated."""
        need_dx = check_bool(need_dx, "need_dx")
        cuts = self.cuts
        if cuts is None or len(dy) != cuts[-1]:
            rows = "no forward pass yet" if cuts is None else f"{cuts[-1]} images"
            raise ValueError(f"dy must have one row per image of the last forward ({rows})")
        blocks, split = self.replicas[0][1], self.split
        with blas_on_one_thread():  # the tail, whole batch: the layers themselves hold it
            dy = backward_through(blocks[split:], dy, need_dx or split > 0)
        if split == 0:
            return dy
        if self.via is not None:
            return self.backward_in_processes(dy, need_dx)
        replicas = self.replicas[: len(cuts) - 1]
        dxs = [None] * len(replicas)

        def run(k, slot):
            dxs[k] = self.part_backward(dy, k, replicas[k][1], need_dx)

        run_parts(run, len(replicas))
        self.sum_gradients([[twin.grads for twin in copies] for copies, _ in replicas])
        if not need_dx:
            return None
        return dxs[0] if len(dxs) == 1 else get_array_module(dy).concatenate(dxs)

    def part_backward(self, dy, k, blocks, need_dx):
        """Part k's backward pass through the head ``blocks`` (the first ``split``),
        from the whole batch's ``dy``: its dL/dx, or None."""
        return backward_through(blocks[: self.split], dy[self.cuts[k] : self.cuts[k + 1]], need_dx)

    def backward_in_processes(self, dy, need_dx):
        """The parts' backward passes where their forward passes ran (``processes.py``);
        each head layer's ``grads`` the sum of its parts', in part order; dx or None."""
        pool, layers = self.via, self.head_layers()

        def run_mine(k, slot):  # part k, this process's slot-th: on replica slot
            return self.part_backward(dy, k, self.replicas[slot][1], need_dx)

        with blas_on_one_thread(), inline_splits():
            dx, flat = pool.backward(dy, self.cuts, need_dx, run_mine)
        slots, parts = param_slots(layers)[0], []
        for k in range(len(self.cuts) - 1):  # part k's gradients: this process's, or a worker's
            if k in pool.mine:
                parts.append([twin.grads for twin in self.replicas[pool.mine.index(k)][0]])
                continue
            grads = [[] for _ in layers]
            for i, _, offset, shape in slots:  # views of the shared vector (part 0's copied:
                view = flat[k, offset : offset + prod(shape)].reshape(shape)  # summed into)
                grads[i].append(view.copy() if k == 0 else view)
            parts.append(grads)
        self.sum_gradients(parts)
        return dx

    def sum_gradients(self, parts):
        """The ``grads`` of each layer of the blocks run in parts (the first
        ``split``): its parts' gradients summed part by part, in order (``g_0 +
        g_1 + ...``, into ``g_0``), the elements split over the threads.
        ``parts[k][i]``: part k's gradients of layer i. The tail's layers keep their own."""
        for i, layer in enumerate(self.head_layers()):
            grads = [part[i] for part in parts]
            if len(grads) == 1:
                layer.grads = grads[0]
                continue
            layer.grads = [add_all([g[j] for g in grads]) for j in range(len(grads[0]))]

    def predict(self, x, chunk):
        """The forward pass over ``x``, nothing kept for a backward pass: groups
        of ``GROUP`` images (:func:`DataParallel.predict_group`), concatenated."""
        group = max(GROUP, chunk)
        firsts = range(0, len(x), group) if len(x) else [0]  # an empty batch: one empty group
        count = min(get_threads(), -(-max(len(x), 1) // chunk))
        workers = [self.replica(s, self.workers)[1] for s in range(count)]
        try:
            outs = [self.predict_group(x[i : i + group], chunk, workers) for i in firsts]
        finally:
            for blocks in workers:
                forget_caches(blocks)
        return outs[0] if len(outs) == 1 else get_array_module(x).concatenate(outs)

    def predict_group(self, x, chunk, workers):
        """``x`` in chunks of ``chunk`` images shared out over the threads, each
        through the blocks that see images (a chunk's arrays stay in the CPU's
        caches); then the flat features of the whole group through the rest, once
        (``tail_forward``): dense1's 13 MB of weights are read once per group,
        not once per chunk, its column blocks shared over the threads."""
        cuts = list(range(0, len(x), chunk)) + [len(x)]
        if len(cuts) == 1:  # an empty batch: one empty chunk
            cuts = [0, 0]
        y, split = _heads_forward(x, cuts, lambda k, slot: workers[slot])
        return self.tail_forward(y, workers[0], split)


def backward_through(blocks, dy, need_dx):
    """``dy`` back through ``blocks``, the last first (each fills its layers'
    ``grads``): dL/d(the first block's input), or None when ``need_dx`` is False
    (the first block then skips it; every later one must pass it on)."""
    for i in reversed(range(len(blocks))):
        dy = blocks[i].backward(dy, need_dx=need_dx or i > 0)
    return dy


def _heads_forward(x, cuts, blocks_of, whole=False):
    """Each part ``x[cuts[k] : cuts[k + 1]]`` through the blocks ``blocks_of(k, slot)``
    (its replica's, or its thread's) while the activation is still an image, or
    through all of them when ``whole``; the parts on the threads (``run_parts``).
    Returns the parts' outputs joined and the index of the first block not run."""
    heads, stops = [None] * (len(cuts) - 1), [None] * (len(cuts) - 1)

    def run(k, slot):  # part k, up to the first block whose input is flat
        y, blocks, i = x[cuts[k] : cuts[k + 1]], blocks_of(k, slot), 0
        while i < len(blocks) and (whole or y.ndim > 2):
            y, i = blocks[i].forward(y), i + 1
        heads[k], stops[k] = y, i

    run_parts(run, len(heads))
    y = heads[0] if len(heads) == 1 else get_array_module(x).concatenate(heads)
    return y, stops[0]


def add_all(arrays):
    """``arrays[0] + arrays[1] + ...`` (same shapes), summed left to right into
    ``arrays[0]`` itself (part 0's gradient, made fresh by its backward pass: a
    second 13 MB array for dense1 would cost fresh OS pages every step); the
    elements split over the threads (``threads.split_batch``). Returns it."""
    xp = get_array_module(arrays[0])
    total = arrays[0] if arrays[0].flags.c_contiguous else xp.ascontiguousarray(arrays[0])
    flats = [total.reshape(-1)] + [a.reshape(-1) for a in arrays[1:]]

    def add(lo, hi):
        for flat in flats[1:]:
            flats[0][lo:hi] += flat[lo:hi]

    split_batch(add, flats[0].size, flats[0].size, xp)
    return total


def forget_caches(blocks) -> None:
    """Drop what the blocks kept for a backward pass (inference needs none)."""
    for block in blocks:
        block.cache = None
        if hasattr(block, "activation_cache"):
            block.activation_cache = None
