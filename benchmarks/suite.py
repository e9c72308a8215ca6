"""Build the groups of cases, time them, and collect everything into one dict.

Sections (each a list of groups timed interleaved, see ``timing.py``):

- matmul: square GEMMs with NumPy (or CuPy), the machine's measured peak
  that every GFLOP/s figure is compared with;
- conv gemm: the matrix products inside npcnn's convolutions at the network's
  shapes, alone, to state what fraction of that peak they reach;
- op: each op of the network, forward and forward+backward, per batch size:
  npcnn, npcnn naive (small batches), TF eager, TF tf.function;
- train step: forward, loss, backward and Adam of the whole network;
- adam: the optimizer update alone (3.27 M parameters);
- inference: the forward pass of the whole network, images per second;
- headline: the training step at batch 50 and inference at batch 1000 again,
  with more rounds: the figures the targets are judged on.
"""

from __future__ import annotations

import datetime
import os
import time

import numpy as np

from . import workloads as wl
from .machine import machine_info
from .timing import Case, Settings, time_group

MODES = {
    # batch sizes of the op/train sections, naive batch sizes, inference batch sizes,
    # rounds, seconds per timed block, headline rounds, matmul sizes, dtypes of the
    # train step at the headline batch
    "smoke": dict(
        batches=[2],
        ops=["pool2", "softmax+loss"],
        naive_batches=[1],
        inference_batches=[2],
        headline_batch=2,
        headline_inference_batch=4,
        rounds=2,
        block_s=0.002,
        warmup=1,
        headline_rounds=2,
        matmul_sizes=[128],
        dtypes=["float32"],
        pause_s=0.0,
    ),
    "quick": dict(
        batches=[1, 50],
        naive_batches=[1],
        inference_batches=[1, 1000],
        headline_batch=50,
        headline_inference_batch=1000,
        rounds=3,
        block_s=0.05,
        warmup=2,
        headline_rounds=7,
        matmul_sizes=[1024, 2048],
        dtypes=["float32", "float64"],
        pause_s=0.15,
    ),
    "full": dict(
        batches=[1, 8, 32, 50, 128, 256],
        naive_batches=[1, 2],
        inference_batches=[1, 50, 256, 1000],
        headline_batch=50,
        headline_inference_batch=1000,
        rounds=5,
        block_s=0.15,
        warmup=3,
        headline_rounds=15,
        matmul_sizes=[1024, 2048, 3072],
        dtypes=["float32", "float64"],
        pause_s=0.15,
    ),
}
GPU_MATMUL_SIZES = {"smoke": [256], "quick": [4096], "full": [4096, 8192]}
SECTIONS = ["matmul", "conv gemm", "op", "train step", "adam", "inference", "headline"]


class NoGpuError(RuntimeError):
    pass


def load_cupy():
    """CuPy with a usable GPU, or a clear error."""
    try:
        import cupy
    except ImportError as e:
        raise NoGpuError(
            "--device gpu needs CuPy (pip install 'npcnn[gpu]', i.e. cupy-cuda12x): "
            f"import cupy failed: {e}"
        ) from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        raise NoGpuError(f"--device gpu: CuPy is installed but finds no GPU ({e})") from e
    if count < 1:
        raise NoGpuError("--device gpu: CuPy is installed but finds no GPU")
    return cupy


def load_tf(enabled=True, threads=None):
    """TensorFlow, or (None, reason) when it is missing or disabled."""
    if not enabled:
        return None, "TF rows skipped: --no-tf"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as e:
        return None, f"TF rows skipped: TensorFlow is not installed ({e})"
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    return tf, ""


def limit_blas_threads(threads):
    """Limit NumPy's BLAS to ``threads`` threads for the whole run (needs threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None, "--threads ignored for BLAS: threadpoolctl is not installed"
    return threadpool_limits(limits=threads, user_api="blas"), ""


class Runner:
    def __init__(self, config, log=print):
        self.config = config
        self.mode = MODES[config.mode]
        self.log = log
        self.device = config.device
        self.cupy = load_cupy() if self.device == "gpu" else None
        self.xp = self.cupy if self.cupy is not None else np
        self.tf, self.notes = None, []
        tf, reason = load_tf(not config.no_tf, config.threads)
        if reason:
            self.notes.append(reason)
        self.blas_limit = None
        if config.threads:
            self.blas_limit, reason = limit_blas_threads(config.threads)
            self.notes.append(reason or f"BLAS and TF intra-op threads limited to {config.threads}")
        self.tf_devices = []
        if tf is not None:
            self.tf = tf
            has_gpu = bool(tf.config.list_physical_devices("GPU"))
            if self.device == "cpu":
                self.tf_devices = ["CPU"] + (["GPU"] if has_gpu else [])
            elif has_gpu:
                self.tf_devices = ["GPU"]
            else:
                self.notes.append("TF rows skipped: TensorFlow sees no GPU")
        self.settings = Settings(
            rounds=config.rounds or self.mode["rounds"],
            warmup=self.mode["warmup"],
            block_s=self.mode["block_s"],
            pause_s=self.mode["pause_s"] if config.pause is None else config.pause,
        )
        self.results = []

    # ------------------------------------------------------------ helpers
    def sync(self):
        if self.cupy is not None:
            self.cupy.cuda.Device().synchronize()

    @property
    def np_impl(self):
        return "npcnn" if self.cupy is None else "npcnn (cupy)"

    @property
    def np_family(self):
        return "numpy" if self.cupy is None else "cupy"

    def to_device(self, a):
        return a if self.cupy is None else self.cupy.asarray(a)

    def np_case(self, section, name, kind, batch, dtype, fn, flops=None, impl=None):
        return Case(
            section,
            name,
            kind,
            impl or self.np_impl,
            self.np_family,
            batch,
            dtype,
            fn,
            flops,
            self.sync if self.cupy is not None else None,
        )

    def tf_cases(self, section, name, kind, batch, dtype, make_fns, flops=None):
        """TF cases on each TF device: ``make_fns()`` -> {'tf eager': fn, 'tf function': fn},
        called inside the device scope."""
        tf = self.tf
        cases = []
        for dev in self.tf_devices:
            tag = "" if dev == "CPU" and self.device == "cpu" else f" ({dev.lower()})"
            with tf.device(f"/{dev}:0"):
                fns = make_fns()
            sync = None
            if dev == "GPU" and hasattr(tf.test.experimental, "sync_devices"):
                sync = tf.test.experimental.sync_devices
            for impl, fn in fns.items():

                def run(fn=fn, dev=dev):
                    with tf.device(f"/{dev}:0"):
                        return fn()

                cases.append(
                    Case(section, name, kind, impl + tag, "tf", batch, dtype, run, flops, sync)
                )
        return cases

    def time(self, cases):
        if cases:
            self.results += time_group(cases, self.settings, self.log)

    # ------------------------------------------------------------ sections
    def matmul(self):
        """Square GEMMs: the peak GFLOP/s of this machine's matrix product."""
        sizes = self.mode["matmul_sizes"]
        if self.cupy is not None:
            sizes = GPU_MATMUL_SIZES[self.config.mode]
        rng = np.random.default_rng(0)
        for n in sizes:
            cases = []
            for dtype in ("float32", "float64"):
                a = self.to_device(rng.random((n, n)).astype(dtype))
                b = self.to_device(rng.random((n, n)).astype(dtype))
                impl = "numpy" if self.cupy is None else "cupy"
                cases.append(
                    self.np_case(
                        "matmul",
                        f"{n}x{n}x{n}",
                        "matmul",
                        n,
                        dtype,
                        lambda a=a, b=b: a @ b,
                        2.0 * n**3,
                        impl=impl,
                    )
                )
                if self.cupy is not None and dtype == "float32":
                    cases += self._cupy_tf32_case(n, a, b)
            self.time(cases)

    def _cupy_tf32_case(self, n, a, b):
        """float32 GEMM with TF32 tensor cores on, where CuPy lets us set it."""
        try:
            from cupy._core import _routines_linalg as linalg

            default = linalg.get_compute_type(np.dtype("float32"))
            tf32 = linalg.COMPUTE_TYPE_TF32
            linalg.set_compute_type(np.dtype("float32"), default)  # settable at all?
        except Exception as e:  # a private CuPy API: any failure means "not measured"
            self.notes.append(f"CuPy TF32 matmul not measured: compute type not settable ({e})")
            return []

        def run():
            linalg.set_compute_type(np.dtype("float32"), tf32)
            try:
                return a @ b
            finally:
                linalg.set_compute_type(np.dtype("float32"), default)

        case = self.np_case(
            "matmul", f"{n}x{n}x{n}", "matmul", n, "float32", run, 2.0 * n**3, impl="cupy tf32"
        )
        return [case]

    def conv_gemm(self):
        """The products inside npcnn's convolution (batch = headline batch), alone."""
        n = self.mode["headline_batch"]
        for dtype in ("float32",):
            for name, (h, w, cin, cout) in wl.CONV.items():
                a = {k: self.to_device(v) for k, v in wl.make_inputs(name, n, dtype).items()}
                rows, k = n * h * w, 25 * cin
                cols = self.to_device(np.random.default_rng(1).random((rows, k)).astype(dtype))
                w2 = a["w"].reshape(k, cout)
                dy2 = a["dy"].reshape(rows, cout)
                flops = 2.0 * rows * k * cout
                products = {  # the three products of npcnn/ops/conv2d.py
                    "y = cols @ W": lambda c=cols, w2=w2: c @ w2,
                    "dW = cols.T @ dy": lambda c=cols, d=dy2: c.T @ d,
                    "dcols = dy @ W.T": lambda d=dy2, w2=w2: d @ w2.T,
                }
                cases = [
                    self.np_case("conv gemm", name, kind, n, dtype, fn, flops)
                    for kind, fn in products.items()
                ]
                for c in cases:
                    c.extra = {"gemm_shape": f"({rows} x {k}) @ ({k} x {cout})"}
                self.time(cases)

    def ops(self):
        naive_batches = set(self.mode["naive_batches"]) if self.cupy is None else set()
        batches = sorted(set(self.config.batch_sizes or self.mode["batches"]) | naive_batches)
        dtype = "float32"
        for n in batches:
            for name in self.mode.get("ops", wl.OP_NAMES):
                host = wl.make_inputs(name, n, dtype)
                dev = {k: self.to_device(v) for k, v in host.items()}
                for kind in wl.KINDS:
                    flops = wl.op_flops(name, kind, n)
                    cases = []
                    in_main = n in (self.config.batch_sizes or self.mode["batches"])
                    if in_main or n in naive_batches:
                        fn = wl.npcnn_op(name, kind, dev)
                        cases.append(self.np_case("op", name, kind, n, dtype, fn, flops))
                    if n in naive_batches and name in wl.NAIVE_OPS:
                        fn = wl.npcnn_op(name, kind, host, use_naive=True)
                        cases.append(
                            self.np_case("op", name, kind, n, dtype, fn, flops, "npcnn naive")
                        )
                    if self.tf is not None:
                        cases += self.tf_cases(
                            "op",
                            name,
                            kind,
                            n,
                            dtype,
                            lambda name=name, kind=kind, host=host: {
                                "tf eager": wl.tf_op(self.tf, name, kind, host, False),
                                "tf function": wl.tf_op(self.tf, name, kind, host, True),
                            },
                            flops,
                        )
                    self.time(cases)

    def _train_group(self, section, n, dtype):
        images, labels = wl.mnist_like_batch(n, dtype)
        net = wl.NpcnnNetwork(dtype, self.xp)
        x, y = self.to_device(images), self.to_device(labels)
        flops = wl.train_flops(n)
        cases = [
            self.np_case(
                section, "seed cnn", "train step", n, dtype, lambda: net.train_step(x, y), flops
            )
        ]
        if self.tf is not None:

            def make():
                tfnet = wl.TfNetwork(self.tf, dtype)
                tx, ty = self.tf.constant(images), self.tf.constant(labels)
                return {
                    "tf eager": lambda: tfnet.train_step(tx, ty),
                    "tf function": lambda: tfnet.train_step_function(tx, ty),
                }

            cases += self.tf_cases(section, "seed cnn", "train step", n, dtype, make, flops)
        self.time(cases)

    def _inference_group(self, section, n, dtype):
        images, _ = wl.mnist_like_batch(n, dtype)
        net = wl.NpcnnNetwork(dtype, self.xp)
        x = self.to_device(images)
        flops = wl.forward_flops(n)
        cases = [
            self.np_case(section, "seed cnn", "inference", n, dtype, lambda: net.predict(x), flops),
            # the whole batch in one forward call: shows what predict's chunks save
            self.np_case(
                section,
                "seed cnn",
                "inference",
                n,
                dtype,
                lambda: net.model.forward(x),
                flops,
                impl=self.np_impl + " one call",
            ),
        ]
        if self.tf is not None:

            def make():
                tfnet = wl.TfNetwork(self.tf, dtype)
                tx = self.tf.constant(images)
                return {
                    "tf eager": lambda: tfnet.predict(tx),
                    "tf function": lambda: tfnet.predict_function(tx),
                    "tf function chunked": lambda: tfnet.predict_chunked(tx),
                }

            cases += self.tf_cases(section, "seed cnn", "inference", n, dtype, make, flops)
        self.time(cases)

    def train(self):
        for n in self.config.batch_sizes or self.mode["batches"]:
            self._train_group("train step", n, "float32")
        for dtype in self.mode["dtypes"]:
            if dtype != "float32":
                self._train_group("train step", self.mode["headline_batch"], dtype)

    def adam(self):
        for dtype in self.mode["dtypes"]:
            net = wl.NpcnnNetwork(dtype, self.xp)
            rng = np.random.default_rng(0)
            host_grads = [rng.standard_normal(p.shape).astype(dtype) for p in net.model.params]
            grads = [self.to_device(g) for g in host_grads]
            params = net.model.params
            cases = [
                self.np_case(
                    "adam",
                    "adam",
                    "update",
                    0,
                    dtype,
                    lambda net=net, grads=grads, params=params: net.optimizer.apply_gradients(
                        zip(grads, params)
                    ),
                )
            ]
            if self.tf is not None:

                def make(dtype=dtype, host_grads=host_grads):
                    tfnet = wl.TfNetwork(self.tf, dtype)
                    tvars = tfnet.model.trainable_variables
                    tgrads = [self.tf.constant(g) for g in host_grads]
                    opt = tfnet.optimizer

                    def apply():
                        return opt.apply_gradients(zip(tgrads, tvars))

                    return {
                        "tf eager": apply,
                        "tf function": self.tf.function(apply, autograph=False),
                    }

                cases += self.tf_cases("adam", "adam", "update", 0, dtype, make)
            for c in cases:
                c.extra = {"parameters": int(sum(int(np.prod(p.shape)) for p in params))}
            self.time(cases)

    def inference(self):
        for n in self.config.inference_batch_sizes or self.mode["inference_batches"]:
            self._inference_group("inference", n, "float32")

    def headline(self):
        saved = self.settings.rounds
        self.settings.rounds = self.config.headline_rounds or self.mode["headline_rounds"]
        try:
            self._train_group("headline", self.mode["headline_batch"], "float32")
            self._inference_group("headline", self.mode["headline_inference_batch"], "float32")
        finally:
            self.settings.rounds = saved


def run(config, log=print) -> dict:
    """Run the sections asked for; return {'machine', 'settings', 'results', 'notes', ...}."""
    started = time.time()
    runner = Runner(config, log)
    sections = config.sections or SECTIONS
    info = machine_info(config.device, runner.tf, runner.cupy)
    log(f"machine: {info['cpu_model']} ({info['logical_cpus']} CPUs), device {config.device}")
    for note in runner.notes:
        log(f"note: {note}")
    steps = {
        "matmul": runner.matmul,
        "conv gemm": runner.conv_gemm,
        "op": runner.ops,
        "train step": runner.train,
        "adam": runner.adam,
        "inference": runner.inference,
        "headline": runner.headline,
    }
    section_s = {}
    for section in SECTIONS:
        if section in sections:
            log(f"== {section}")
            t0 = time.time()
            steps[section]()
            section_s[section] = round(time.time() - t0, 1)
    return {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": config.command,
        "mode": config.mode,
        "machine": info,
        "settings": {**vars(runner.settings), **{k: v for k, v in runner.mode.items()}},
        "notes": runner.notes,
        "duration_s": round(time.time() - started, 1),
        "section_duration_s": section_s,
        "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": runner.results,
    }
