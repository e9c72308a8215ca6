"""The runner: build the groups of cases of each section, time them on the
interleaving stopwatch (``timing.py``), collect one list of result rows.

Sections (``--sections``; each a list of groups timed interleaved):

- matmul: square GEMMs with NumPy (or CuPy): the machine's measured peak,
  which every GFLOP/s figure of the same run is compared with;
- conv gemm: the three products inside npcnn's convolutions, alone;
- op: each op of the network, forward and forward+backward, on every system
  that exposes it (npcnn, its naive loops at small batches, TF, PyTorch, JAX,
  MyGrad);
- train step / inference: the whole network against the batch size, on every
  system;
- headline: the training step at batch 50 and inference at batch 1000, with
  more rounds: the figures of the README's table;
- float64: npcnn's step at batch 50 in float64 beside float32;
- adam: the optimizer update alone (3.27 M parameters), npcnn and Keras;
- breakdown: where the step's time goes, layer by layer (``breakdown.py``);
- memory: peak memory of ``predict`` on many images, npcnn vs Keras;
- levers: the fast tier's levers, each against what it replaced (``levers.py``);
- kernels: the fused CUDA kernels against the ops they replace (GPU only).

Two names select several sections: ``peers`` (matmul, headline, train step,
inference, op: every system, on all cores and on one core) and ``targets``
(matmul, headline on both, float64, memory: what the targets table needs).
Rows on one core come from this program re-run under ``taskset -c 0`` with one
thread everywhere, and are merged into the same results.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import defaultdict

import numpy as np

from . import workloads as wl
from .machine import machine_info
from .systems import DEFAULT, Systems, affinity_cpus
from .timing import Case, Settings, interleaved, time_group

SECTIONS = [
    "matmul", "conv gemm", "op", "train step", "inference", "headline", "float64", "adam",
    "breakdown", "memory", "levers", "kernels",
]  # fmt: skip
PRESETS = {
    "peers": ["matmul", "headline", "train step", "inference", "op"],
    "targets": ["matmul", "headline", "float64", "memory"],
}
EVERYTHING = ["matmul", "conv gemm", "op", "train step", "inference", "headline", "float64",
              "adam", "breakdown", "memory"]  # fmt: skip
MODES = {
    # train/inference: the sweeps; op: batches of the op section (naive: only these);
    # one_core: sections re-run on one core when the run asks for it
    "smoke": dict(
        train=[], inference=[], op=[1], naive=[1], ops=["conv2", "pool2"], naive_ops=["pool2"],
        headline_batch=2, headline_inference_batch=4, rounds=2, headline_rounds=2,
        block_s=0.002, warmup=1, matmul=[128], pause_s=0.0, compile=False,
        memory_images=64, memory_batches=[None, 64], memory_systems=["npcnn"],
        one_core=["matmul", "headline"], breakdown_rounds=1, levers_rounds=2,
    ),
    "quick": dict(
        train=[8, 128], inference=[50, 256], op=[50], naive=[1], ops=wl.OP_NAMES,
        headline_batch=50, headline_inference_batch=1000, rounds=3, headline_rounds=7,
        block_s=0.1, warmup=2, matmul=[1024, 2048], pause_s=0.15, compile=True,
        memory_images=10000, memory_batches=[None, 1000, 10000],
        memory_systems=["npcnn", "tf"], one_core=["matmul", "headline"],
        breakdown_rounds=5, levers_rounds=5,
    ),
    "full": dict(
        train=[1, 8, 32, 128, 256], inference=[1, 50, 256, 2000], op=[1, 50, 128],
        naive=[1], ops=wl.OP_NAMES, headline_batch=50, headline_inference_batch=1000,
        rounds=5, headline_rounds=15, block_s=0.2, warmup=3, matmul=[1024, 2048, 3072],
        pause_s=0.15, compile=True, memory_images=10000,
        memory_batches=[None, 100, 1000, 10000], memory_systems=["npcnn", "tf"],
        one_core=["matmul", "headline", "train step", "inference"], breakdown_rounds=9,
        levers_rounds=9,
    ),
}  # fmt: skip
GPU_MATMUL_SIZES = {"smoke": [256], "quick": [4096], "full": [4096, 8192]}


def expand(sections) -> list[str]:
    """Section names in run order, presets expanded; unknown names raise ValueError."""
    wanted = set()
    for s in sections:
        if s in PRESETS:
            wanted |= set(PRESETS[s])
        elif s in SECTIONS:
            wanted.add(s)
        else:
            raise ValueError(f"unknown section {s!r}")
    return [s for s in SECTIONS if s in wanted]


class Runner:
    def __init__(self, config, log=print):
        self.config, self.log = config, log
        self.mode = MODES[config.mode]
        self.cores = "one" if config.one_core_child else "all"
        self.threads = config.threads or affinity_cpus()
        self.device = config.device
        self.cupy = None
        if self.device == "gpu":
            from .gpu import load_cupy

            self.cupy = load_cupy()
        self.xp = self.cupy if self.cupy is not None else np
        self.notes = []
        self.blas_limit = self._limit_blas()
        self.systems = Systems(
            config.systems or DEFAULT, self.threads, self.device, self.xp, config.old,
            compile_ok=self.mode["compile"],
        )  # fmt: skip
        self.settings = Settings(
            rounds=config.rounds or self.mode["rounds"],
            warmup=self.mode["warmup"],
            block_s=self.mode["block_s"],
            pause_s=self.mode["pause_s"] if config.pause is None else config.pause,
        )
        self.results = []
        self.failed = {}  # system: why its network failed here

    def _limit_blas(self):
        """BLAS threads for the whole run (threadpoolctl; OpenBLAS ignores a late env var)."""
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self.notes.append("BLAS threads not set: threadpoolctl is not installed")
            return None
        return threadpool_limits(limits=self.threads, user_api="blas")

    # ------------------------------------------------------------ helpers
    def case(self, section, name, kind, impl, batch, dtype, fn, flops=None, sync=None, **extra):
        family = "cupy" if impl == "npcnn" and self.cupy is not None else None
        from .systems import FAMILY

        return Case(
            section=section, name=name, kind=kind, impl=impl,
            family=family or FAMILY.get(impl, "numpy"), batch=batch, dtype=dtype, fn=fn,
            flops=flops, sync=sync, extra=extra, cores=self.cores, threads=self.threads,
        )  # fmt: skip

    def time(self, cases):
        if cases:
            self.results += time_group(cases, self.settings, self.log)

    def attempt(self, what, build):
        """``build()``, or None with a note when the system fails on this workload."""
        try:
            return build()
        except Exception as e:  # a framework that cannot do this here: a note, not a crash
            lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
            why = " ... ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else ""
            self.notes.append(f"{what}: failed ({type(e).__name__}: {why[:300]})")
            self.log("".join(traceback.format_exception(e)[-6:]).rstrip())
            self.log(f"note: {self.notes[-1]}")
            return None

    # ------------------------------------------------------------ sections
    def matmul(self):
        """Square GEMMs: the peak GFLOP/s of this machine's matrix product."""
        sizes = self.mode["matmul"] if self.cupy is None else GPU_MATMUL_SIZES[self.config.mode]
        rng = np.random.default_rng(0)
        impl = "numpy" if self.cupy is None else "cupy"
        sync = self.systems.sync_fn("npcnn")
        for n in sizes:
            cases = []
            for dtype in ("float32", "float64"):
                a = self.xp.asarray(rng.random((n, n)).astype(dtype))
                b = self.xp.asarray(rng.random((n, n)).astype(dtype))
                fn = lambda a=a, b=b: a @ b  # noqa: E731
                cases.append(self.case("matmul", f"{n}^3", "matmul", impl, n, dtype, fn,
                                       2.0 * n**3, sync))  # fmt: skip
            self.time(cases)

    def conv_gemm(self):
        """The products inside npcnn's convolution at the headline batch, alone."""
        n, dtype = self.mode["headline_batch"], "float32"
        for name, (h, w, cin, cout) in wl.CONV.items():
            a = {k: self.xp.asarray(v) for k, v in wl.make_inputs(name, n, dtype).items()}
            rows, k = n * h * w, 25 * cin
            cols = self.xp.asarray(np.random.default_rng(1).random((rows, k)).astype(dtype))
            w2, dy2 = a["w"].reshape(k, cout), a["dy"].reshape(rows, cout)
            products = {  # the three products of npcnn/ops/conv2d.py
                "y = cols @ W": lambda c=cols, w2=w2: c @ w2,
                "dW = cols.T @ dy": lambda c=cols, d=dy2: c.T @ d,
                "dcols = dy @ W.T": lambda d=dy2, w2=w2: d @ w2.T,
            }
            shape = f"({rows} x {k}) @ ({k} x {cout})"
            self.time([
                self.case("conv gemm", name, kind, "npcnn", n, dtype, fn, 2.0 * rows * k * cout,
                          self.systems.sync_fn("npcnn"), gemm_shape=shape)
                for kind, fn in products.items()
            ])  # fmt: skip

    def ops(self):
        names = self.mode["ops"] if self.config.mode == "smoke" else wl.OP_NAMES
        systems = [s for s in self.systems.wanted if s not in ("npcnn old", "torch compile")]
        for n in self.config.batch_sizes or self.mode["op"]:
            for name in names:
                host = wl.make_inputs(name, n, "float32")
                for kind in wl.KINDS:
                    cases = []
                    for system in systems:
                        naive_ops = self.mode.get("naive_ops", wl.NAIVE_OPS)
                        if system == "npcnn naive" and (
                            n not in self.mode["naive"] or name not in naive_ops
                        ):
                            continue
                        made = self.attempt(
                            f"{system} {name} {kind} N={n}",
                            lambda s=system, o=name, k=kind, h=host: self.systems.op_fn(s, o, k, h),
                        )
                        if made is not None:
                            fn, sync = made
                            cases.append(self.case("op", name, kind, system, n, "float32", fn,
                                                   wl.op_flops(name, kind, n), sync))  # fmt: skip
                    self.time(cases)

    def network_group(self, section, workload, n, dtype="float32", systems=None):
        """One group: ``workload`` ('train step' or 'inference') at batch ``n`` on every
        network system (``systems``: a subset)."""
        images, labels = wl.mnist_like_batch(n, dtype)
        flops = wl.train_flops(n) if workload == "train step" else wl.forward_flops(n)
        cases = []
        for system in systems or self.systems.network_systems():
            if system == "torch compile" and section != "headline":
                continue  # it compiles anew for every batch size: the headline batches only
            what = f"{system} {workload} N={n} {dtype}"
            if workload == "train step":
                made = self.attempt(what, lambda s=system: self._first(
                    self.systems.train_fn(s, images, labels, dtype)))  # fmt: skip
            else:
                made = self.attempt(what, lambda s=system: self._first(
                    self.systems.predict_fn(s, images, dtype)))  # fmt: skip
            if made is None:
                self.failed.setdefault(system, self.notes[-1].split(": failed ", 1)[-1])
            else:
                fn, sync = made
                cases.append(self.case(section, "seed cnn", workload, system, n, dtype, fn,
                                       flops, sync))  # fmt: skip
        self.time(cases)

    @staticmethod
    def _first(made):
        """Run a workload once (tracing, compiling) so that failures surface here."""
        fn, sync = made
        fn()
        if sync is not None:
            sync()
        return made

    def train(self):
        for n in self.config.batch_sizes or self.mode["train"]:
            self.network_group("train step", "train step", n)

    def inference(self):
        for n in self.config.inference_batch_sizes or self.mode["inference"]:
            self.network_group("inference", "inference", n)

    def headline(self):
        saved = self.settings.rounds
        self.settings.rounds = self.config.headline_rounds or self.mode["headline_rounds"]
        try:
            self.network_group("headline", "train step", self.mode["headline_batch"])
            self.network_group("headline", "inference", self.mode["headline_inference_batch"])
        finally:
            self.settings.rounds = saved

    def float64(self):
        """npcnn's step in float64 and float32, interleaved (their ratio is a target)."""
        n = self.mode["headline_batch"]
        images, labels = wl.mnist_like_batch(n, "float64")
        cases = []
        for system in [s for s in ("npcnn", "npcnn old") if self.systems.has(s)]:
            for dtype in ("float32", "float64"):
                x, y = images.astype(dtype), labels
                fn, sync = self.systems.train_fn(system, x, y, dtype)
                cases.append(self.case("float64", "seed cnn", "train step", system, n, dtype,
                                       fn, wl.train_flops(n), sync))  # fmt: skip
        self.time(cases)

    def adam(self):
        for dtype in ("float32",) if self.config.mode == "smoke" else ("float32", "float64"):
            net = self.systems.net("npcnn", dtype)
            params = net.model.params
            rng = np.random.default_rng(0)
            host = [rng.standard_normal(p.shape).astype(dtype) for p in params]
            grads = [self.xp.asarray(g) for g in host]
            count = int(sum(int(np.prod(p.shape)) for p in params))
            fn = lambda o=net.optimizer, g=grads, p=params: o.apply_gradients(zip(g, p))  # noqa: E731
            cases = [self.case("adam", "adam", "update", "npcnn", 0, dtype, fn,
                               sync=self.systems.sync_fn("npcnn"), parameters=count)]  # fmt: skip
            if self.systems.tf is not None and self.systems.has("tf function"):
                tf = self.systems.tf
                apply = keras_adam(tf, dtype, host)
                for impl, f in (("tf eager", apply), ("tf function", tf.function(apply))):
                    cases.append(self.case("adam", "adam", "update", impl, 0, dtype, f,
                                           parameters=count))  # fmt: skip
            self.time(cases)

    def breakdown(self):
        """Each part of the step, medians over interleaved rounds of a few steps each."""
        from . import breakdown as bd

        n = self.mode["headline_batch"]
        timers = {"npcnn": bd.LayerTimer(__import__("npcnn"), n)}
        if self.systems.old is not None:
            timers["npcnn old"] = bd.LayerTimer(self.systems.old, n)
        real = {}
        for system in timers:
            images, labels = wl.mnist_like_batch(n, "float32")
            real[system] = self.systems.train_fn(system, images, labels, "float32")[0]
        tf = self.systems.tf
        tf_parts = bd.tf_segments(tf, n) if tf is not None else {}
        pause, calls = self.settings.pause_s, 3
        samples = defaultdict(lambda: defaultdict(list))
        rounds = self.config.rounds or self.mode["breakdown_rounds"]
        for r in range(rounds + 1):  # the first round warms up
            sums = defaultdict(lambda: defaultdict(float))
            for system, timer in timers.items():
                for _ in range(calls):
                    for segment, seconds in timer().items():
                        sums[system][segment] += seconds / calls
                    start = time.perf_counter()
                    real[system]()
                    sums[system]["step"] += (time.perf_counter() - start) / calls
                time.sleep(pause)
            for segment, function in tf_parts.items():
                for _ in range(calls):
                    start = time.perf_counter()
                    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t,
                                          function())  # fmt: skip
                    sums["tf function"][segment] += (time.perf_counter() - start) / calls
            time.sleep(pause)
            if r > 0:
                for system, parts in sums.items():
                    for segment, seconds in parts.items():
                        samples[system][segment].append(seconds)
        for system, parts in samples.items():
            for segment, values in parts.items():
                self.results.append({
                    "section": "breakdown", "name": segment, "kind": "segment", "impl": system,
                    "family": "tf" if system.startswith("tf") else "numpy", "batch": n,
                    "dtype": "float32", "median_s": statistics.median(values),
                    "min_s": min(values), "max_s": max(values), "rounds": len(values),
                    "flops": None, "gflops_per_s": None, "cores": self.cores,
                    "threads": self.threads,
                    "group": segment if segment == "step" else bd.group_of(segment),
                })  # fmt: skip

    def memory(self):
        from . import memory

        reason = memory.available()
        if reason:
            self.notes.append(reason)
            return
        n = self.mode["memory_images"]
        systems = [s for s in self.mode["memory_systems"]
                   if s == "npcnn" or self.systems.tf is not None]  # fmt: skip
        for batch in self.mode["memory_batches"]:
            for system in systems:
                peak = self.attempt(
                    f"{system} predict memory, batch_size={batch}",
                    lambda s=system, b=batch: memory.peak_bytes(s, n, b),
                )
                if peak is None:
                    continue
                impl = "npcnn" if system == "npcnn" else "tf predict"
                self.log(f"  memory     {impl:<12} {n} images, batch_size={batch}: "
                         f"{peak / 1e6:.0f} MB")  # fmt: skip
                self.results.append({
                    "section": "memory", "name": "predict", "kind": "peak memory",
                    "impl": impl, "family": "numpy" if system == "npcnn" else "tf",
                    "batch": n, "batch_size": batch or "default", "dtype": "float32",
                    "peak_bytes": peak, "cores": self.cores, "threads": self.threads,
                })  # fmt: skip

    def levers(self):
        from npcnn.fast import threads

        from . import levers

        before = threads.get_threads()
        rounds = self.config.rounds or self.mode["levers_rounds"]
        try:
            for lever, build in levers.levers().items():
                cases = self.attempt(f"lever {lever!r} not measurable on this code", build)
                if not cases:
                    continue
                medians = self.attempt(f"lever {lever!r}", lambda c=cases: interleaved(
                    c, rounds, pause=0.01, block_s=self.settings.block_s))  # fmt: skip
                if medians is None:
                    continue
                base = next(iter(medians.values()))
                for variant, t in medians.items():
                    self.log(f"  lever {lever}: {variant} {t * 1e3:.2f} ms ({base / t:.2f}x)")
                    self.results.append({
                        "section": "levers", "name": lever, "kind": "lever", "impl": variant,
                        "family": "numpy", "batch": 50, "dtype": "", "median_s": t,
                        "gain": base / t, "cores": self.cores, "threads": self.threads,
                    })  # fmt: skip
        finally:
            threads.set_threads(before)

    def kernels(self):
        if self.cupy is None:
            self.notes.append("kernels: the fused CUDA kernels run with --device gpu only")
            return
        from .gpu import kernel_workloads

        sync = self.systems.sync_fn("npcnn")
        for batch in (50, 1000):
            workloads = self.attempt("kernels", lambda b=batch: kernel_workloads(self.cupy, b))
            for name, variants in (workloads or {}).items():
                cases = [self.case("kernels", name, "call", impl, batch, "float32", fn, sync=sync)
                         for impl, fn in variants.items()]  # fmt: skip
                self.attempt(f"kernels {name} N={batch}", lambda c=cases: self.time(c))

    def run_section(self, section):
        step = {"matmul": self.matmul, "conv gemm": self.conv_gemm, "op": self.ops,
                "train step": self.train, "inference": self.inference,
                "headline": self.headline, "float64": self.float64, "adam": self.adam,
                "breakdown": self.breakdown, "memory": self.memory, "levers": self.levers,
                "kernels": self.kernels}[section]  # fmt: skip
        step()


def keras_adam(tf, dtype, grads):
    """A zero-argument function applying Keras's Adam to the seed network's variables
    (closing over them: ``tf.function`` would trace default arguments as inputs)."""
    net = wl.TfNetwork(tf, dtype)
    variables, tgrads = net.model.trainable_variables, [tf.constant(g) for g in grads]

    def apply():
        return net.optimizer.apply_gradients(zip(tgrads, variables))

    return apply


def one_core_rows(config, sections, log=print) -> tuple[list, list]:
    """(rows, notes) of ``sections`` run again in a child process pinned to CPU 0
    (``taskset -c 0``) with one thread in every framework."""
    import shutil

    if not shutil.which("taskset") or not hasattr(os, "sched_getaffinity"):
        return [], ["one-core rows skipped: taskset is not available here"]
    cpu = min(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "one_core.json")
        cmd = ["taskset", "-c", str(cpu), sys.executable, "-m", "benchmarks", "--mode",
               config.mode, "--sections", ",".join(sections), "--threads", "1",
               "--one-core-child", out]  # fmt: skip
        for flag in ("systems", "old", "rounds", "headline_rounds", "pause"):
            value = getattr(config, flag)
            if value is not None:
                value = ",".join(value) if isinstance(value, list) else str(value)
                cmd += [f"--{flag.replace('_', '-')}", value]
        from .peers import thread_env

        env = {**os.environ, **thread_env(1)}
        log(f"== one core: {' '.join(cmd)}")
        done = subprocess.run(cmd, env=env, text=True)
        if done.returncode != 0 or not os.path.exists(out):
            return [], [f"one-core run failed (exit status {done.returncode})"]
        with open(out) as f:
            child = json.load(f)
    return child["results"], [f"one core: {n}" for n in child["notes"]]


def run(config, log=print) -> dict:
    """Run the sections asked for; return {'machine', 'settings', 'results', 'notes', ...}."""
    started = time.time()
    sections = expand(config.sections or EVERYTHING)
    runner = Runner(config, log)
    info = machine_info(config.device, runner.systems.tf, runner.cupy)
    info["threads"] = runner.threads
    info["peers"] = versions()
    log(f"machine: {info['cpu_model']} ({info['logical_cpus']} CPUs, {runner.threads} threads), "
        f"device {config.device}")  # fmt: skip
    for system, reason in runner.systems.missing.items():
        log(f"note: {system}: no rows: {reason}")
    section_s = {}
    for section in sections:
        log(f"== {section}" + (" (one core)" if config.one_core_child else ""))
        t0 = time.time()
        runner.run_section(section)
        section_s[section] = round(time.time() - t0, 1)
    notes = runner.notes
    one = [s for s in sections if s in runner.mode["one_core"]]
    wants_one = config.cores == "both" or (  # smoke: only when asked
        config.cores is None and config.mode != "smoke"
        and {"peers", "targets"} & set(config.sections or ["peers"])
    )  # fmt: skip
    if one and wants_one and not config.one_core_child and config.device == "cpu":
        rows, child_notes = one_core_rows(config, one, log)
        runner.results += rows
        notes += child_notes
    return {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": config.command,
        "mode": config.mode,
        "sections": sections,
        "machine": info,
        "missing": {**runner.systems.missing, **{
            s: f"could not run here: {why}" for s, why in runner.failed.items()
            if not any(r["impl"] == s for r in runner.results)}},  # fmt: skip
        "settings": {**vars(runner.settings), **runner.mode},
        "notes": notes,
        "duration_s": round(time.time() - started, 1),
        "section_duration_s": section_s,
        "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": runner.results,
    }


def versions() -> dict:
    """The peers' versions, for the ones installed (without importing the others)."""
    import importlib.metadata as md

    out = {}
    for dist in ("torch", "jax", "jaxlib", "mygrad", "tensorflow"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out
