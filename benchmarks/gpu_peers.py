"""npcnn on CuPy against the frameworks a GPU user would pick: PyTorch and JAX.

The tutorial's network -- Conv2D(32, 5x5, same, relu) -> MaxPool 2 ->
Conv2D(64, 5x5, same, relu) -> MaxPool 2 -> 3136 -> Dense(1024, relu) ->
Dense(10) -> softmax -- with the same shapes and Glorot-uniform/zero init in
every framework, timed on the same card:

- training step: forward, the tutorial's loss (sum of sparse categorical
  cross-entropy over the batch), backward, Adam(1e-3, Keras's eps 1e-7);
- inference: the forward pass to probabilities, the whole batch in one call.

Contenders (float32; "tf32" rows let cuBLAS/cuDNN use TF32 tensor cores and are
labelled so; every other row has TF32 off):

- ``npcnn cupy``: ``npcnn.seed_cnn().to(cupy)`` + ``npcnn.train.train_step``
  (CUPY_TF32=0), inference ``model.predict``;
- ``torch eager`` / ``torch eager tf32``: an ``nn.Module`` in NCHW (PyTorch's
  native layout), ``F.cross_entropy(logits, reduction='sum')``,
  ``torch.optim.Adam`` (default foreach implementation);
- ``torch.compile``: the same module through ``torch.compile`` (TF32 off),
  at the target batches only (each batch size compiles anew);
- ``jax jit`` / ``jax jit tf32``: NHWC, ``lax.conv_general_dilated`` with
  ``precision=HIGHEST`` (``jax_default_matmul_precision='highest'``) or
  ``DEFAULT`` (TF32), Adam written out in ``jnp`` inside the jitted step.

Timing is :mod:`benchmarks.timing`'s: warm-up (compilation happens there),
then interleaved rounds, each timing a block of back-to-back calls between two
device synchronisations; the median over rounds is reported. Also measured:
the card's float32 matmul rate (CuPy, 4096^3, TF32 off) and conv2's three GEMMs
in npcnn as a percentage of it, and the fused CUDA kernels of
``npcnn.fast.cuda_kernels`` against the readable ops they replace.

Writes ``peers.json``, ``peers.md`` (the issue's targets first) and
``peers.png``. A benchmark only: npcnn never imports this file, nor PyTorch or
JAX.

    python -m benchmarks.gpu_peers --out DIR                   # on the GPU machine
    python -m benchmarks.gpu_peers --device cpu --tiny --out DIR   # smoke test
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import time
import traceback

# before any framework is imported: JAX must not grab 75% of the card, CuPy no TF32
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("CUPY_TF32", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from .timing import Case, Settings, time_group  # noqa: E402
from .workloads import conv_flops, forward_flops, mnist_like_batch, train_flops  # noqa: E402

GPU_BATCHES = [50, 200, 1000, 10000]
TINY_BATCHES = [2, 8]
COMPILE_BATCHES = [50, 1000, 10000]  # torch.compile: the batches of the targets
LR, BETA_1, BETA_2, EPS = 1e-3, 0.9, 0.999, 1e-7  # Keras's Adam, as the tutorial
TARGETS = {  # the targets
    "step50": 1.5,  # npcnn step time / torch eager step time, batch 50: <= 1.5
    "step1000": 1.5,
    "infer10000": 0.5,  # npcnn images/s / fastest TF32-off peer's, batch 10,000: >= 0.5
    "gemm": 70.0,  # conv GEMMs, % of the measured float32 matmul rate: >= 70
}


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- contenders
class Contender:
    """One implementation: ``make(mode, x, labels)`` returns a zero-argument
    function doing one training step ('train') or one inference ('infer') on
    those inputs, already warmed up (compiled); ``sync()`` waits for the device."""

    family = "gpu"
    tf32_note = "TF32 on (cuBLAS and cuDNN)"

    def __init__(self, impl, precision="fp32", batches=None):
        self.impl, self.precision, self.batches = impl, precision, batches
        self.setup_s = 0.0  # time spent building/compiling, reported as a note

    def wants(self, batch):
        return self.batches is None or batch in self.batches

    def make(self, mode, x, labels):
        raise NotImplementedError

    def sync(self):
        pass


class NpcnnContender(Contender):
    def __init__(self, xp, impl="npcnn cupy"):
        super().__init__(impl)
        import npcnn

        self.xp = xp
        self.model = npcnn.seed_cnn(seed=0, dtype="float32")
        if xp is not np:
            self.model.to(xp)
        self.optimizer = npcnn.Adam(LR)

    def make(self, mode, x, labels):
        from npcnn.train import train_step

        xd, yd = self.xp.asarray(x), self.xp.asarray(labels)
        if mode == "train":
            return lambda: train_step(self.model, self.optimizer, xd, yd)
        return lambda: self.model.predict(xd)

    def sync(self):
        if self.xp is not np:
            self.xp.cuda.Device().synchronize()


def torch_model(torch):
    """The tutorial's network as a PyTorch module (NCHW), returning logits."""
    nn, F = torch.nn, torch.nn.functional

    class SeedCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 5, padding=2)  # 'same' for 5x5, stride 1
            self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
            self.dense1 = nn.Linear(7 * 7 * 64, 1024)
            self.dense2 = nn.Linear(1024, 10)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(m.weight)  # Keras's glorot_uniform
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.dense1(x.flatten(1)))
            return self.dense2(x)

    return SeedCNN()


def set_torch_tf32(torch, on: bool) -> str:
    """TF32 on or off for cuBLAS matmuls and cuDNN convolutions; returns the API used.

    PyTorch >= 2.9 has ``fp32_precision`` ('ieee' or 'tf32') and refuses reads
    that mix it with the legacy ``allow_tf32`` flags, so use the new one where
    it exists and the legacy flags (``torch.backends.cuda.matmul.allow_tf32``,
    ``torch.backends.cudnn.allow_tf32``) otherwise.
    """
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
        matmul.fp32_precision = conv.fp32_precision = "tf32" if on else "ieee"
        return "fp32_precision"
    matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    return "allow_tf32"


class TorchContender(Contender):
    def __init__(self, device, precision="fp32", compiled=False, batches=None):
        impl = "torch.compile" if compiled else "torch eager"
        super().__init__(impl + (" tf32" if precision == "tf32" else ""), precision, batches)
        import torch

        self.torch, self.device = torch, torch.device("cuda" if device == "gpu" else "cpu")
        torch.manual_seed(0)
        self.set_precision()
        self.model = torch_model(torch).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=LR, betas=(BETA_1, BETA_2), eps=EPS
        )
        self.net = self.model
        if compiled:
            try:  # one static graph per batch size and mode: allow more than the default 8
                import torch._dynamo

                torch._dynamo.config.cache_size_limit = max(
                    32, torch._dynamo.config.cache_size_limit
                )
            except Exception:
                pass
            self.net = torch.compile(self.model, dynamic=False)

    def set_precision(self):
        """Global switches in PyTorch: set before every call, since rows interleave."""
        set_torch_tf32(self.torch, self.precision == "tf32")

    def make(self, mode, x, labels):
        torch, F = self.torch, self.torch.nn.functional
        xd = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        yd = torch.from_numpy(labels.astype(np.int64)).to(self.device)

        if mode == "train":

            def run():
                self.set_precision()
                self.optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(self.net(xd), yd, reduction="sum")
                loss.backward()
                self.optimizer.step()
                return loss

        else:

            def run():
                self.set_precision()
                with torch.inference_mode():
                    return torch.softmax(self.net(xd), dim=1)

        return run

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


class JaxContender(Contender):
    tf32_note = "precision=DEFAULT: XLA may use TF32"

    def __init__(self, precision="fp32"):
        super().__init__("jax jit" + (" tf32" if precision == "tf32" else ""), precision)
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
        self.jax = jax
        jnp, lax = jax.numpy, jax.lax
        prec = lax.Precision.HIGHEST if precision == "fp32" else lax.Precision.DEFAULT

        rng = np.random.default_rng(0)

        def glorot(shape, fan_in, fan_out):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            return jnp.asarray(rng.uniform(-limit, limit, shape).astype(np.float32))

        params = {
            "conv1_w": glorot((5, 5, 1, 32), 25, 25 * 32),
            "conv1_b": jnp.zeros(32, jnp.float32),
            "conv2_w": glorot((5, 5, 32, 64), 25 * 32, 25 * 64),
            "conv2_b": jnp.zeros(64, jnp.float32),
            "dense1_w": glorot((3136, 1024), 3136, 1024),
            "dense1_b": jnp.zeros(1024, jnp.float32),
            "dense2_w": glorot((1024, 10), 1024, 10),
            "dense2_b": jnp.zeros(10, jnp.float32),
        }

        def conv_relu(x, w, b):
            y = lax.conv_general_dilated(
                x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=prec
            )
            return jax.nn.relu(y + b)

        def pool(x):
            return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def logits(p, x):
            x = pool(conv_relu(x, p["conv1_w"], p["conv1_b"]))
            x = pool(conv_relu(x, p["conv2_w"], p["conv2_b"]))
            x = x.reshape(x.shape[0], -1)
            x = jax.nn.relu(jnp.dot(x, p["dense1_w"], precision=prec) + p["dense1_b"])
            return jnp.dot(x, p["dense2_w"], precision=prec) + p["dense2_b"]

        def loss_fn(p, x, y):
            logp = jax.nn.log_softmax(logits(p, x))
            return -jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(p, m, v, t, x, y):
            loss, g = jax.value_and_grad(loss_fn)(p, x, y)
            t = t + 1
            alpha = LR * jnp.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
            tm = jax.tree_util.tree_map
            m = tm(lambda m, g: m + (g - m) * (1 - BETA_1), m, g)
            v = tm(lambda v, g: v + (g * g - v) * (1 - BETA_2), v, g)
            p = tm(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + EPS), p, m, v)
            return p, m, v, t, loss

        self.step = jax.jit(step, donate_argnums=(0, 1, 2, 3))
        self.infer = jax.jit(lambda p, x: jax.nn.softmax(logits(p, x)))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        self.state = [params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params)]
        self.state.append(jnp.zeros((), jnp.float32))
        self.last = None

    def make(self, mode, x, labels):
        jax = self.jax
        xd, yd = jax.device_put(x), jax.device_put(labels.astype(np.int32))

        if mode == "train":

            def run():
                *self.state, loss = self.step(*self.state, xd, yd)
                self.last = loss
                return loss

        else:

            def run():
                self.last = self.infer(self.state[0], xd)
                return self.last

        return run

    def sync(self):
        if self.last is not None:
            self.jax.block_until_ready(self.last)


def kernel_workloads(cp, batch) -> dict:
    """{op: {impl: fn}}: each fused kernel and the readable (and fast) op it replaces,
    on the tutorial's shapes at this batch, as zero-argument functions."""
    import npcnn
    from npcnn import fast, ops
    from npcnn.fast import cuda_kernels as ck
    from npcnn.ops.conv2d import col2im

    rng = np.random.default_rng(0)

    def dev(*shape):
        return cp.asarray(rng.standard_normal(shape).astype(np.float32))

    z, b = dev(batch, 28, 28, 32), dev(32)
    x1, dy1 = dev(batch, 28, 28, 32), dev(batch, 14, 14, 32)
    dcols = dev(batch * 14 * 14, 25 * 32)
    pads, shape = ((2, 2), (2, 2)), (batch, 18, 18, 32)
    _, pool_cache = ops.maxpool2d_forward(x1, 2, 2, "valid")
    _, arg_cache = ck.maxpool2d_forward(x1, 2, 2, "valid")
    params = npcnn.seed_cnn(seed=0).to(cp).params
    grads = [cp.ones_like(p) for p in params]
    m1, v1 = [cp.zeros_like(p) for p in params], [cp.zeros_like(p) for p in params]
    m2, v2 = [cp.zeros_like(p) for p in params], [cp.zeros_like(p) for p in params]
    s = (np.float32(1e-6), np.float32(0.1), np.float32(0.001), np.float32(1e-7))

    def adam_fast():
        for p, g, m, v in zip(params, grads, m1, v1):
            fast.adam_update(p, g, m, v, *s)

    def col2im_ops():
        full = col2im(dcols.reshape(batch, 14, 14, 5, 5, 32), shape, (5, 5), (1, 1), (14, 14))
        return full[:, 2:16, 2:16]

    return {
        "bias+relu conv1": {
            "ops": lambda: ops.relu_forward(z + b),
            "fused": lambda: ck.bias_relu_forward(z, b),
        },
        "maxpool1 forward": {
            "ops": lambda: ops.maxpool2d_forward(x1, 2, 2, "valid"),
            "fast": lambda: fast.maxpool2d_forward(x1, 2, 2, "valid"),
            "fused": lambda: ck.maxpool2d_forward(x1, 2, 2, "valid"),
        },
        "maxpool1 backward": {
            "ops": lambda: ops.maxpool2d_backward(dy1, pool_cache),
            "fused": lambda: ck.maxpool2d_backward(dy1, arg_cache),
        },
        "col2im conv2": {
            "ops": col2im_ops,
            "fused": lambda: ck.col2im(dcols, shape, (5, 5), (1, 1), (14, 14), pads),
        },
        "adam, 8 parameters": {
            "fast (one call per parameter)": adam_fast,
            "fused (one launch)": lambda: ck.adam_update_all(params, grads, m2, v2, *s),
        },
    }


# ---------------------------------------------------------------- the runner
class Runner:
    def __init__(self, args, log=print):
        self.args, self.log = args, log
        self.gpu = args.device == "gpu"
        self.t0 = time.perf_counter()
        self.results: list[dict] = []
        self.notes: list[str] = []
        self.skipped: list[str] = []
        self.info: dict = {
            "device": args.device,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "numpy": np.__version__,
            "argv": sys.argv[1:],
        }
        if args.tiny:
            self.batches = TINY_BATCHES
            self.settings = Settings(rounds=2, warmup=1, block_s=0.01, pause_s=0.0)
        else:
            self.batches = [int(b) for b in args.batches.split(",")]
            self.settings = Settings(rounds=args.rounds, warmup=2, block_s=0.05, pause_s=0.0)
        self.plotted = False
        self.cupy = None
        if self.gpu:
            import cupy

            from .machine import gpu_info

            self.cupy = cupy
            self.info["gpu"] = gpu_info(cupy)
            log(f"card: {self.info['gpu']['name']} ({self.info['gpu'].get('nvidia_smi')})")

    def over_budget(self, what):
        spent = time.perf_counter() - self.t0
        if spent > self.args.budget_s:
            self.skipped.append(f"{what}: skipped, time budget of {self.args.budget_s:.0f} s spent")
            self.log(self.skipped[-1])
            return True
        return False

    def contenders(self):
        """Every contender that can be built here; failures become notes."""
        made = []

        def attempt(label, build):
            start = time.perf_counter()
            try:
                c = build()
            except Exception as e:  # a framework missing or broken: a note, not a crash
                self.notes.append(f"{label}: not run ({type(e).__name__}: {e})")
                self.log(self.notes[-1])
                return
            c.setup_s = time.perf_counter() - start
            made.append(c)

        attempt(
            "npcnn",
            lambda: NpcnnContender(self.cupy or np, "npcnn cupy" if self.gpu else "npcnn numpy"),
        )
        dev = self.args.device
        if "torch" in self.args.peers:
            if have("torch"):
                import torch

                self.info["torch"] = torch.__version__
                if self.gpu:
                    self.info["torch_tf32_api"] = set_torch_tf32(torch, False)
                    self.info["torch_cuda"] = torch.version.cuda
                    self.info["cudnn"] = torch.backends.cudnn.version()
                attempt("torch eager", lambda: TorchContender(dev))
                if self.gpu:
                    attempt("torch eager tf32", lambda: TorchContender(dev, "tf32"))
                if self.gpu and not self.args.no_compile:
                    batches = self.batches if self.args.tiny else COMPILE_BATCHES
                    attempt(
                        "torch.compile", lambda: TorchContender(dev, compiled=True, batches=batches)
                    )
            else:
                self.notes.append("torch: not installed, no PyTorch rows")
        if "jax" in self.args.peers:
            if have("jax"):
                import jax

                self.info["jax"] = jax.__version__
                self.info["jax_devices"] = [str(d) for d in jax.devices()]
                if self.gpu and jax.default_backend() != "gpu":
                    self.notes.append(
                        f"jax: backend is {jax.default_backend()}, not gpu; no JAX rows"
                    )
                else:
                    attempt("jax jit", lambda: JaxContender())
                    if self.gpu:
                        attempt("jax jit tf32", lambda: JaxContender("tf32"))
            else:
                self.notes.append("jax: not installed, no JAX rows")
        return made

    def network_group(self, contenders, mode, batch):
        if self.over_budget(f"{mode} batch {batch}"):
            return
        x, labels = mnist_like_batch(batch, "float32", seed=batch)
        flops = train_flops(batch) if mode == "train" else forward_flops(batch)
        section = "train step" if mode == "train" else "inference"
        cases = []
        for c in contenders:
            if not c.wants(batch):
                continue
            start = time.perf_counter()
            try:
                fn = c.make(mode, x, labels)
                fn()  # first call: tracing, compilation, autotuning
                c.sync()
            except Exception as e:
                msg = f"{c.impl} {mode} batch {batch}: failed ({type(e).__name__}: {e})"
                self.notes.append(msg.splitlines()[0][:300])
                self.log(msg)
                continue
            first_s = time.perf_counter() - start
            note = c.tf32_note if c.precision == "tf32" else "TF32 off"
            cases.append(
                Case(
                    section,
                    "seed_cnn",
                    mode,
                    c.impl,
                    c.family,
                    batch,
                    "float32",
                    fn,
                    flops,
                    c.sync,
                    note,
                    {"precision": c.precision, "first_call_s": round(first_s, 3)},
                )
            )
        if cases:
            try:
                self.results += time_group(cases, self.settings, self.log)
            except Exception as e:  # out of memory, say: report it, go on with the next group
                self.notes.append(f"{mode} batch {batch}: timing failed ({type(e).__name__}: {e})")
                self.log(traceback.format_exc())
        self.free()

    def free(self):
        if self.cupy is not None:
            self.cupy.get_default_memory_pool().free_all_blocks()
        if have("torch") and "torch" in sys.modules and self.gpu:
            sys.modules["torch"].cuda.empty_cache()

    def gemm(self):
        """The card's float32 matmul rate (CuPy, TF32 off) and conv2's GEMMs as a % of it."""
        if not self.gpu or self.over_budget("gemm"):
            return
        cp = self.cupy
        n = self.args.matmul_n
        rng = np.random.default_rng(0)
        a, b = (cp.asarray(rng.random((n, n), dtype=np.float32)) for _ in range(2))
        sync = cp.cuda.Device().synchronize
        cases = [
            Case(
                "matmul",
                f"{n}^3",
                "matmul",
                "cupy",
                "gpu",
                n,
                "float32",
                lambda: a @ b,
                2.0 * n**3,
                sync,
                "TF32 off",
            )
        ]
        self.results += time_group(cases, self.settings, self.log)
        for batch in (50, 1000):
            rows, k, cout = batch * 14 * 14, 25 * 32, 64
            cols = cp.asarray(rng.random((rows, k), dtype=np.float32))
            w2 = cp.asarray(rng.random((k, cout), dtype=np.float32))
            dy = cp.asarray(rng.random((rows, cout), dtype=np.float32))
            flops = conv_flops("conv2", batch)
            products = {
                "y = cols @ W": lambda c=cols, w=w2: c @ w,
                "dW = cols.T @ dy": lambda c=cols, d=dy: c.T @ d,
                "dcols = dy @ W.T": lambda d=dy, w=w2: d @ w.T,
            }
            cases = [
                Case(
                    "conv gemm",
                    "conv2",
                    kind,
                    "npcnn cupy",
                    "gpu",
                    batch,
                    "float32",
                    fn,
                    flops,
                    sync,
                    f"({rows} x {k}) @ ({k} x {cout}) or its transposes",
                )
                for kind, fn in products.items()
            ]
            self.results += time_group(cases, self.settings, self.log)
        self.free()

    def kernels(self):
        """npcnn.fast.cuda_kernels against the readable ops they replace (tutorial shapes)."""
        if not self.gpu or self.over_budget("fused kernels"):
            return
        sync = self.cupy.cuda.Device().synchronize
        for batch in (50, 1000):
            for name, impls in kernel_workloads(self.cupy, batch).items():
                cases = [
                    Case(
                        "fused kernels", name, "call", impl, "gpu", batch, "float32", fn, None, sync
                    )
                    for impl, fn in impls.items()
                ]
                try:
                    self.results += time_group(cases, self.settings, self.log)
                except Exception as e:
                    self.notes.append(f"fused kernels {name} batch {batch}: failed ({e})")
                    self.log(traceback.format_exc())
            self.free()

    def run(self):
        contenders = self.contenders()
        # the targets first, so a run cut short by the budget still answers them
        order = [("train", 50), ("train", 1000), ("infer", 10000)]
        if self.args.tiny:
            order = []
        if self.gpu:
            order.append(("gemm", 0))
        for mode in ("train", "infer"):
            order += [(mode, b) for b in self.batches if (mode, b) not in order]
        order.append(("kernels", 0))
        for mode, batch in order:
            if mode == "gemm":
                self.gemm()
            elif mode == "kernels":
                self.kernels()
            else:
                self.network_group(contenders, mode, batch)
            self.info["wall_s"] = round(time.perf_counter() - self.t0, 1)
            write_outputs(self, self.args.out)  # partial results survive a time limit
        self.info["setup_s"] = {c.impl: round(c.setup_s, 2) for c in contenders}
        self.info["wall_s"] = round(time.perf_counter() - self.t0, 1)


# ---------------------------------------------------------------- the report
def _median(results, section, impl, batch, kind=None):
    for r in results:
        if (r["section"], r["impl"], r["batch"]) == (section, impl, batch) and (
            kind is None or r["kind"] == kind
        ):
            return r["median_s"]
    return None


def targets(results):
    """The issue's four targets, from the timed rows (None where a row is missing)."""
    rows = []
    for batch, key in ((50, "step50"), (1000, "step1000")):
        npc = _median(results, "train step", "npcnn cupy", batch)
        ref = _median(results, "train step", "torch eager", batch)
        ratio = npc / ref if npc and ref else None
        rows.append(
            {
                "what": f"training step, batch {batch}, npcnn / PyTorch eager (time)",
                "npcnn_ms": npc and npc * 1e3,
                "peer": "torch eager",
                "peer_ms": ref and ref * 1e3,
                "value": ratio,
                "target": f"<= {TARGETS[key]}x",
                "met": None if ratio is None else ratio <= TARGETS[key],
            }
        )
    npc = _median(results, "inference", "npcnn cupy", 10000)
    peers = [
        (r["median_s"], r["impl"])
        for r in results
        if r["section"] == "inference"
        and r["batch"] == 10000
        and r["family"] == "gpu"
        and not r["impl"].startswith("npcnn")
        and r.get("precision") == "fp32"
    ]
    best = min(peers) if peers else (None, None)
    ratio = best[0] / npc if npc and best[0] else None  # throughput ratio = inverse time ratio
    rows.append(
        {
            "what": "inference, batch 10,000, npcnn / fastest TF32-off peer (images/s)",
            "npcnn_ms": npc and npc * 1e3,
            "peer": best[1],
            "peer_ms": best[0] and best[0] * 1e3,
            "value": ratio,
            "target": f">= {TARGETS['infer10000']}x",
            "met": None if ratio is None else ratio >= TARGETS["infer10000"],
        }
    )
    peak = next((r for r in results if r["section"] == "matmul"), None)
    for batch in (50, 1000):
        gemms = [r for r in results if r["section"] == "conv gemm" and r["batch"] == batch]
        if peak and gemms:
            pct = 100 * sum(r["flops"] for r in gemms) / sum(r["median_s"] for r in gemms)
            pct /= peak["flops"] / peak["median_s"]
        else:
            pct = None
        rows.append(
            {
                "what": f"conv2 GEMMs, batch {batch}, % of the measured float32 matmul rate",
                "npcnn_ms": sum(r["median_s"] for r in gemms) * 1e3 if gemms else None,
                "peer": f"cupy matmul {peak['name']}" if peak else None,
                "peer_ms": peak and peak["median_s"] * 1e3,
                "value": pct,
                "target": f">= {TARGETS['gemm']:.0f}%",
                "met": None if pct is None else pct >= TARGETS["gemm"],
            }
        )
    return rows


def _fmt(v, digits=3):
    if v is None or v == []:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def markdown(data) -> str:
    info, results = data["machine"], data["results"]
    card = info.get("gpu", {}).get("name", f"{info['device']} (no GPU)")
    lines = [
        f"# npcnn vs PyTorch and JAX on {card}",
        "",
        "float32; TF32 off except rows marked tf32. Medians of interleaved rounds "
        "(benchmarks/timing.py). Versions: "
        + ", ".join(f"{k} {info[k]}" for k in ("numpy", "torch", "jax") if info.get(k))
        + (
            f", CuPy {info['gpu']['cupy_version']}, CUDA runtime "
            f"{info['gpu']['cuda_runtime_version']}"
            if "gpu" in info
            else ""
        ),
        "",
        "## The issue's targets",
        "",
        "| what | npcnn ms | peer | peer ms | value | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in data["targets"]:
        lines.append(
            f"| {t['what']} | {_fmt(t['npcnn_ms'])} | {_fmt(t['peer'])} | {_fmt(t['peer_ms'])} "
            f"| {_fmt(t['value'])} | {t['target']} | {_fmt(t['met'])} |"
        )
    for section, unit in (("train step", "ms per step"), ("inference", "ms per batch")):
        rows = [r for r in results if r["section"] == section]
        if not rows:
            continue
        batches = sorted({r["batch"] for r in rows})
        impls = list(dict.fromkeys(r["impl"] for r in rows))
        lines += [
            "",
            f"## {section}: {unit} (images/s below)",
            "",
            "| impl | " + " | ".join(f"N={b}" for b in batches) + " |",
            "|---|" + "---|" * len(batches),
        ]
        for impl in impls:
            cells = []
            for b in batches:
                t = _median(results, section, impl, b)
                cells.append("-" if t is None else f"{t * 1e3:.3f} ({b / t:,.0f}/s)")
            lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    other = [r for r in results if r["section"] in ("matmul", "conv gemm", "fused kernels")]
    if other:
        lines += [
            "",
            "## GEMMs and fused kernels",
            "",
            "| section | what | impl | N | median ms | GFLOP/s |",
            "|---|---|---|---|---|---|",
        ]
        for r in other:
            g = r.get("gflops_per_s")
            lines.append(
                f"| {r['section']} | {r['name']} {r['kind']} | {r['impl']} | {r['batch']} "
                f"| {r['median_s'] * 1e3:.4f} | {'-' if g is None else f'{g:,.0f}'} |"
            )
    if data["notes"] or data["skipped"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in data["notes"] + data["skipped"]]
    lines += [
        "",
        "PyTorch uses NCHW and cross-entropy on logits (its idiom); npcnn and JAX NHWC, npcnn "
        "the tutorial's softmax-then-cross-entropy. PyTorch adds Adam's eps to the "
        "bias-corrected sqrt(v), Keras/npcnn/JAX-here to sqrt(v): the same work.",
    ]
    return "\n".join(lines) + "\n"


def plot(data, path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    results = data["results"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, section, ylabel in (
        (axes[0], "train step", "ms per training step"),
        (axes[1], "inference", "images per second"),
    ):
        rows = [r for r in results if r["section"] == section]
        for impl in dict.fromkeys(r["impl"] for r in rows):
            pts = sorted((r["batch"], r["median_s"]) for r in rows if r["impl"] == impl)
            xs = [b for b, _ in pts]
            ys = [t * 1e3 if section == "train step" else b / t for b, t in pts]
            style = "--" if "tf32" in impl else "-"
            ax.plot(xs, ys, style, marker="o", label=impl, lw=2.5 if "npcnn" in impl else 1.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.set_title(section)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    card = data["machine"].get("gpu", {}).get("name", data["machine"]["device"])
    fig.suptitle(f"npcnn vs PyTorch and JAX, {card}, float32 (dashed: TF32)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_outputs(runner, out, with_plot=False) -> str:
    """peers.json and peers.md from what is timed so far (also after every group, so
    a run stopped by a time limit leaves its results); peers.png at the end."""
    data = {
        "machine": runner.info,
        "settings": vars(runner.settings),
        "results": runner.results,
        "targets": targets(runner.results),
        "notes": runner.notes,
        "skipped": runner.skipped,
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "peers.json"), "w") as fh:
        json.dump(data, fh, indent=1, default=str)
    md = markdown(data)
    with open(os.path.join(out, "peers.md"), "w") as fh:
        fh.write(md)
    if with_plot:
        runner.plotted = plot(data, os.path.join(out, "peers.png"))
    return md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_peers", description=__doc__.split("\n")[0]
    )
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    p.add_argument("--tiny", action="store_true", help="batches 2 and 8, 2 rounds: a smoke test")
    p.add_argument("--out", default="runs/gpu_peers")
    p.add_argument("--batches", default=",".join(map(str, GPU_BATCHES)))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--peers", default="torch,jax", help="comma list: torch, jax (npcnn always)")
    p.add_argument("--matmul-n", type=int, default=4096, help="n of the n^3 peak matmul")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="stop starting new groups after this many seconds (default 420)",
    )
    args = p.parse_args(argv)
    args.peers = [s.strip() for s in args.peers.split(",") if s.strip()]
    if args.device == "gpu" and not have("cupy"):
        print("--device gpu needs CuPy", file=sys.stderr)
        return 2

    runner = Runner(args)
    runner.run()
    md = write_outputs(runner, args.out, with_plot=True)
    print(md)
    print(f"wrote {args.out}/peers.json, peers.md" + (", peers.png" if runner.plotted else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
