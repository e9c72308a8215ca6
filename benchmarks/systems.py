"""The systems, one registry: what each one is, what it needs, how many threads it
gets (the one place that sets them), and, inside its worker process, the
zero-argument functions it runs for each case.

A system runs alone in its worker (``worker.py``): npcnn's tiers (the fast tier,
the readable ops, the naive loops; another checkout's with ``--old``; on CuPy
with ``--device gpu``), TensorFlow eager and ``tf.function``, PyTorch eager and
``torch.compile``, JAX ``jit``, MyGrad, and ``numpy`` (the matmul peak). A
system may also be named ``package.module:factory``: ``factory(threads, device)``
returns an object with ``case(spec) -> (fn, sync)``, run like the others (the
tests' crashing and hanging systems are such).

A case is a dict: ``section``, ``name``, ``kind`` ('train step', 'inference',
'forward', 'forward+backward', 'update', 'matmul', 'call'), ``batch``, ``dtype``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

INSTALL = "pip install '.[peers]'"
SYSTEMS = {  # name: (the module it imports, how to install it)
    "npcnn": ("numpy", ""),
    "npcnn-ops": ("numpy", ""),
    "npcnn-naive": ("numpy", ""),
    "npcnn-old": ("numpy", ""),
    "tf-eager": ("tensorflow", "pip install '.[tf]'"),
    "tf-function": ("tensorflow", "pip install '.[tf]'"),
    "torch-eager": ("torch", f"{INSTALL} (or pip install torch)"),
    "torch-compile": ("torch", INSTALL),
    "jax-jit": ("jax", f"{INSTALL} (or pip install jax)"),
    "mygrad": ("mygrad", f"{INSTALL} (or pip install mygrad)"),
    "numpy": ("numpy", ""),
}
NETWORKS = [s for s in SYSTEMS if s not in ("npcnn-naive", "numpy")]  # train step, inference
DEFAULT = [s for s in SYSTEMS if s not in ("npcnn-old", "numpy")]
GPU_ONLY_CPU = {"npcnn-naive", "npcnn-ops", "mygrad"}  # no rows with --device gpu
PEER_CHUNK = 128  # MyGrad's inference runs in chunks of this many images, as npcnn's predict


class NotApplicable(Exception):
    """The system has no such case (an op of a whole-network system, say): no row."""


def is_plugin(name: str) -> bool:
    return ":" in name


def missing(name: str, device: str = "cpu") -> str:
    """Why ``name`` cannot run here ('' when it can), without importing anything."""
    if is_plugin(name):
        return ""
    if device == "gpu" and name in GPU_ONLY_CPU:
        return "runs on the CPU only"
    module, install = SYSTEMS[name]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed: {install}"
    return ""


def thread_env(threads: int) -> dict:
    """Environment variables giving a worker's framework ``threads`` threads; they are
    read when a library loads, so they are set before the worker starts: BLAS
    (OpenBLAS, MKL, OpenMP), npcnn's own threads, XLA's CPU thread pool, and
    OpenBLAS's idle threads put to sleep early (npcnn's own setting, for all)."""
    env = {v: str(threads) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NPCNN_THREADS")}  # fmt: skip
    env["OPENBLAS_THREAD_TIMEOUT"] = "16"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    return env


def apply_threads(framework, name: str, threads: int) -> None:
    """What the environment cannot set: TensorFlow's and PyTorch's pools, by their API."""
    if name.startswith("tf-"):
        framework.config.threading.set_intra_op_parallelism_threads(threads)
        framework.config.threading.set_inter_op_parallelism_threads(threads)
    elif name.startswith("torch-"):
        framework.set_num_threads(threads)
        framework.set_num_interop_threads(threads)


def make(name: str, threads: int, device: str = "cpu"):
    """The system ``name`` in this (worker) process."""
    if is_plugin(name):
        module, factory = name.split(":", 1)
        return getattr(importlib.import_module(module), factory)(threads, device)
    return System(name, threads, device)


class System:
    """One registry system: its networks (one per dtype, from npcnn's seed-0 weights)
    and its functions for each case."""

    def __init__(self, name, threads, device="cpu"):
        import numpy as np

        self.name, self.threads, self.device = name, threads, device
        self.xp, self.nets, self.framework = np, {}, None
        if name == "npcnn" and device == "gpu":
            from .gpu import load_cupy

            self.xp = load_cupy()
        module = SYSTEMS[name][0]
        if module not in ("numpy", "mygrad"):
            self.framework = importlib.import_module(module)
            apply_threads(self.framework, name, threads)

    def info(self) -> dict:
        from .machine import blas_info

        info = {"blas": blas_info()}
        if self.name.startswith("npcnn"):
            import npcnn

            info["npcnn"] = os.path.dirname(npcnn.__file__)
            info["npcnn_threads"] = npcnn.fast.threads.get_threads()
        if self.framework is not None:
            info["version"] = self.framework.__version__
        if self.xp.__name__ == "cupy":
            from .machine import gpu_info

            info["gpu"] = gpu_info(self.xp)
        return info

    def net(self, dtype):
        from . import peers
        from . import workloads as wl

        if dtype not in self.nets:
            if self.name.startswith("npcnn"):
                kernels = "ops" if self.name == "npcnn-ops" else "fast"
                self.nets[dtype] = wl.NpcnnNetwork(dtype, self.xp, kernels=kernels)
            elif self.name.startswith("tf-"):
                tf = self.framework
                with tf.device("/GPU:0" if self.device == "gpu" else "/CPU:0"):
                    self.nets[dtype] = wl.TfNetwork(tf, dtype)
                self.nets[dtype].model.set_weights(peers.seed_weights(dtype))
            else:
                self.nets[dtype] = peers.build(self.name, peers.seed_weights(dtype), self.threads,
                                               self.device)  # fmt: skip
        return self.nets[dtype]

    def sync(self):
        """A function waiting for the device (CuPy, TF and the peers' GPUs are asynchronous)."""
        if self.xp.__name__ == "cupy":
            return self.xp.cuda.Device().synchronize
        if self.name.startswith("tf-") and self.device == "gpu":
            return getattr(self.framework.test.experimental, "sync_devices", None)
        return None

    def case(self, spec):
        """(fn, sync) running ``spec`` once; raises :class:`NotApplicable`."""
        kind = spec["kind"]
        if kind in ("train step", "inference"):
            if self.name not in NETWORKS:
                raise NotApplicable(self.name)
            return self.network(kind, spec["batch"], spec["dtype"])
        from . import cases

        return cases.other(self, spec)

    def network(self, kind, n, dtype):
        from . import workloads as wl

        images, labels = wl.mnist_like_batch(n, dtype)
        net = self.net(dtype)
        if self.name.startswith("npcnn"):
            x, y = self.xp.asarray(images), self.xp.asarray(labels)
            step, run = (lambda: net.train_step(x, y)), (lambda: net.predict(x))
        elif self.name.startswith("tf-"):
            tf = self.framework
            x, y = tf.constant(images), tf.constant(labels)
            compiled = self.name == "tf-function"
            train = net.train_step_function if compiled else net.train_step
            predict = net.predict_function if compiled else net.predict
            step, run = (lambda: train(x, y)), (lambda: predict(x))
        else:
            x, y = net.inputs(images, labels)
            step, run = (lambda: net.train_step(x, y)), (lambda: net.predict(x))
            if self.name == "mygrad":  # whole batches of 1000 need GBs for its im2col
                chunks = range(0, len(x), PEER_CHUNK)
                run = lambda: [net.predict(x[i : i + PEER_CHUNK]) for i in chunks]  # noqa: E731
            return (step if kind == "train step" else run), net.sync
        return (step if kind == "train step" else run), self.sync()
