"""The systems a workload runs on, one registry: npcnn (and another checkout of it),
npcnn's naive loops, TensorFlow eager and ``tf.function``, PyTorch eager and
``torch.compile``, JAX ``jit``, MyGrad; npcnn on CuPy with ``--device gpu``.

Each system is built once per dtype from the same npcnn weights and hands out
zero-argument functions for the workloads (``workloads.py``): a training step,
an inference, an op. A system that cannot run here is not an error: it is
listed in :attr:`Systems.missing` with the reason and how to install it, and
the report prints that as its row.
"""

from __future__ import annotations

import os

import numpy as np

from . import peers
from . import workloads as wl

# name: family (cases of different families are separated by a pause, timing.py)
FAMILY = {
    "npcnn": "numpy",
    "npcnn old": "numpy",
    "npcnn naive": "numpy",
    "tf eager": "tf",
    "tf function": "tf",
    "torch eager": "torch",
    "torch compile": "torch",
    "jax jit": "jax",
    "mygrad": "numpy",
}
NETWORK_SYSTEMS = [s for s in FAMILY if s != "npcnn naive"]  # train step and inference
DEFAULT = [s for s in FAMILY if s != "npcnn old"]
PEER_CHUNK = 128  # MyGrad's inference runs in chunks of this many images, as npcnn's predict


def affinity_cpus() -> int:
    """The CPUs this process may run on (``taskset`` and cgroups respected)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Systems:
    """The systems asked for that can run here, built lazily, one network per dtype."""

    def __init__(self, wanted, threads, device="cpu", xp=np, old=None, compile_ok=True):
        self.threads, self.device, self.xp = threads, device, xp
        self.wanted = list(wanted)
        self.missing: dict[str, str] = {}  # system: why it has no rows
        self.tf = None
        self.old = None
        if device == "gpu":
            self.wanted = [s for s in self.wanted if s not in ("npcnn naive", "mygrad")]
        if "npcnn old" in self.wanted and old is None:
            self.wanted.remove("npcnn old")
        if old is not None:
            from .checkouts import load_checkout

            self.old = load_checkout(old)
            if "npcnn old" not in self.wanted:
                self.wanted.insert(1, "npcnn old")
        if {"tf eager", "tf function"} & set(self.wanted):
            self.tf = self._load_tf()
        for system in ("torch eager", "torch compile", "jax jit", "mygrad"):
            if system in self.wanted:
                try:
                    peers.require(system)
                except peers.Missing as e:
                    self._drop(system, str(e))
        if "torch compile" in self.wanted and not compile_ok:
            self._drop("torch compile", "skipped in smoke mode (compiling takes about a minute)")
        self._nets = {}

    def _drop(self, system, reason):
        self.wanted.remove(system)
        self.missing[system] = reason

    def _load_tf(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError as e:
            for s in ("tf eager", "tf function"):
                if s in self.wanted:
                    self._drop(s, f"TensorFlow is not installed ({e}): pip install '.[tf]'")
            return None
        try:
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(self.threads)
        except RuntimeError:  # TF already initialised: its settings stay
            pass
        self.tf_device = "/GPU:0" if self.device == "gpu" else "/CPU:0"
        if self.device == "gpu" and not tf.config.list_physical_devices("GPU"):
            for s in ("tf eager", "tf function"):
                if s in self.wanted:
                    self._drop(s, "TensorFlow sees no GPU")
        return tf

    def has(self, system) -> bool:
        return system in self.wanted

    def network_systems(self):
        return [s for s in self.wanted if s in NETWORK_SYSTEMS]

    # ------------------------------------------------------------ networks
    def net(self, system, dtype):
        """The system's seed network for ``dtype`` (built once, from npcnn's seed-0 weights)."""
        key = (system, dtype)
        if key not in self._nets:
            if system == "npcnn":
                self._nets[key] = wl.NpcnnNetwork(dtype, self.xp)
            elif system == "npcnn old":
                self._nets[key] = wl.NpcnnNetwork(dtype, np, package=self.old)
            elif system in ("tf eager", "tf function"):
                with self.tf.device(self.tf_device):
                    net = wl.TfNetwork(self.tf, dtype)
                net.model.set_weights(peers.seed_weights(dtype))
                self._nets[("tf eager", dtype)] = self._nets[("tf function", dtype)] = net
            else:
                self._nets[key] = peers.build(
                    system, peers.seed_weights(dtype), self.threads, self.device
                )
        return self._nets[key]

    def train_fn(self, system, images, labels, dtype):
        """(fn, sync): one training step of ``system`` on this batch."""
        net = self.net(system, dtype)
        if system.startswith("npcnn"):
            x, y = self.to_xp(system, images), self.to_xp(system, labels)
            return (lambda: net.train_step(x, y)), self.sync_fn(system)
        if system.startswith("tf"):
            tf = self.tf
            with tf.device(self.tf_device):
                x, y = tf.constant(images), tf.constant(labels)
            step = net.train_step_function if system == "tf function" else net.train_step
            return self._on_tf_device(lambda: step(x, y)), self.sync_fn(system)
        x, y = net.inputs(images, labels)
        return (lambda: net.train_step(x, y)), net.sync

    def predict_fn(self, system, images, dtype):
        """(fn, sync): inference (probabilities) of ``system`` on this batch."""
        net = self.net(system, dtype)
        if system.startswith("npcnn"):
            x = self.to_xp(system, images)
            return (lambda: net.predict(x)), self.sync_fn(system)
        if system.startswith("tf"):
            with self.tf.device(self.tf_device):
                x = self.tf.constant(images)
            run = net.predict_function if system == "tf function" else net.predict
            return self._on_tf_device(lambda: run(x)), self.sync_fn(system)
        if system == "mygrad":  # whole batches of 1000 would need GBs for its im2col
            x = net.inputs(images)
            chunks = range(0, len(x), PEER_CHUNK)
            return (lambda: [net.predict(x[i : i + PEER_CHUNK]) for i in chunks]), net.sync
        x = net.inputs(images)
        return (lambda: net.predict(x)), net.sync

    def op_fn(self, system, name, kind, arrays):
        """(fn, sync) running one op, or None where the system has no such op."""
        if system == "npcnn":
            dev = {k: self.to_xp(system, v) for k, v in arrays.items()}
            return wl.npcnn_op(name, kind, dev), self.sync_fn(system)
        if system == "npcnn naive":
            if name not in wl.NAIVE_OPS:
                return None
            return wl.npcnn_op(name, kind, arrays, use_naive=True), None
        if system in ("tf eager", "tf function"):
            with self.tf.device(self.tf_device):
                fn = wl.tf_op(self.tf, name, kind, arrays, system == "tf function")
            return self._on_tf_device(fn), self.sync_fn(system)
        if system in ("torch eager", "jax jit", "mygrad"):
            net = self.net(system, "float32")
            return net.op(name, kind, arrays), net.sync
        return None  # torch.compile and another checkout: whole networks only

    # ------------------------------------------------------------ helpers
    def to_xp(self, system, a):
        return a if system != "npcnn" or self.xp is np else self.xp.asarray(a)

    def sync_fn(self, system):
        if self.xp is not np and system == "npcnn":
            return self.xp.cuda.Device().synchronize
        if self.tf is not None and system.startswith("tf") and self.device == "gpu":
            return getattr(self.tf.test.experimental, "sync_devices", None)
        return None

    def _on_tf_device(self, fn):
        tf, dev = self.tf, self.tf_device

        def run():
            with tf.device(dev):
                return fn()

        return run
