"""The coordinator: each system in a worker process of its own (``worker.py``),
the sections' cases timed in interleaved rounds across the workers, one list of
result rows. The coordinator imports no framework.

A *group* is the cases compared with each other (say the training step at batch
50 on every system). Each case is prepared in its worker (built, warmed up, the
calls per block chosen), then round 1 times every case once, round 2 again in a
rotated order, and so on, with a pause between two systems (every framework's
threads spin a while after its work), so that a burst of noise from other
processes hits every system alike. Each timed block starts with ``settle``
untimed calls: a training loop runs its steps back to back, and the first call
after the pause pays for the caches the other systems filled. Each case gives
the median seconds per call over the rounds and the spread. A case that fails,
a worker that crashes or hangs, gives a row saying so, and the run goes on.

Sections (``--sections``): matmul (the machine's peak, the yardstick of every
GFLOP/s), op (each op of the network, forward and forward+backward), train
step / inference (the batch sweeps), headline (the step at batch 50 and
inference at batch 1000, more rounds: the README's table), float64 (npcnn's
step in both dtypes), adam (the update alone), memory (peak memory of predict),
kernels (the fused CUDA kernels, ``--device gpu``), explore (``npcnn explore``'s
answer to one drawing), breakdown (npcnn's step on one core: its matrix products,
Adam, the rest). ``peers`` and ``targets`` select several.

Cores (``--cores``): all (every CPU this process may use), one (every worker
pinned to one CPU, one thread), busy (all cores while a process started here
burns one of them: the step only).
"""

from __future__ import annotations

import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

from . import machine
from . import workloads as wl
from .systems import DEFAULT, NETWORKS, missing
from .worker import Worker, WorkerError

SECTIONS = ["matmul", "op", "train step", "inference", "headline", "float64", "adam", "memory",
            "kernels", "explore", "breakdown"]  # fmt: skip
PRESETS = {
    "peers": ["matmul", "headline", "train step", "inference", "op"],
    "targets": ["matmul", "headline", "float64", "memory", "explore", "breakdown"],
}
EVERYTHING = ["matmul", "op", "train step", "inference", "headline", "float64", "adam", "memory",
              "breakdown"]  # fmt: skip
CORES = {"all", "one", "busy"}
MODES = {
    # train/inference: the sweeps' batches; op: the op section's batch (naive: only at
    # these); one_core: the sections also run on one core; peak: the matmul checked
    # at the start and the end of the run
    "smoke": dict(
        train=[], inference=[], op=[1], naive=[1], ops=["conv2", "pool2"], headline_batch=2,
        headline_inference_batch=4, rounds=2, headline_rounds=2, block_s=0.002, warmup=1,
        matmul=[128], peak=128, pause_s=0.0, settle=0, memory_images=64,
        memory_batches=[None, 64], one_core=["matmul", "headline", "breakdown"], timeout=120,
    ),
    "quick": dict(
        train=[8, 128], inference=[50, 256], op=[50], naive=[1], ops=wl.OP_NAMES,
        headline_batch=50, headline_inference_batch=1000, rounds=3, headline_rounds=5,
        block_s=0.1, warmup=2, matmul=[1024, 2048], peak=1024, pause_s=0.15, settle=1,
        memory_images=10000, memory_batches=[None, 1000, 10000],
        one_core=["matmul", "headline", "breakdown"], timeout=600,
    ),
    "full": dict(
        train=[1, 8, 32, 128, 256], inference=[1, 50, 256, 2000], op=[1, 50, 128], naive=[1],
        ops=wl.OP_NAMES, headline_batch=50, headline_inference_batch=1000, rounds=5,
        headline_rounds=15, block_s=0.2, warmup=3, matmul=[1024, 2048, 3072], peak=1024,
        pause_s=0.15, settle=1, memory_images=10000, memory_batches=[None, 100, 1000, 10000],
        one_core=["matmul", "headline", "train step", "inference", "breakdown"], timeout=900,
    ),
}  # fmt: skip


def expand(sections) -> list[str]:
    """Section names in run order, presets expanded; unknown names raise ValueError."""
    wanted = set()
    for s in sections:
        if s not in PRESETS and s not in SECTIONS:
            raise ValueError(f"unknown section {s!r}")
        wanted |= set(PRESETS.get(s, [s]))
    return [s for s in SECTIONS if s in wanted]


def spec(section, name, kind, batch, dtype="float32", **extra) -> dict:
    return {"section": section, "name": name, "kind": kind, "batch": batch, "dtype": dtype,
            **extra}  # fmt: skip


def quantile(values, q):
    """Linear-interpolated quantile of an already sorted list."""
    pos = q * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def flops(s) -> float | None:
    if s["kind"] == "matmul":
        return 2.0 * s["batch"] ** 3
    if s["kind"] == "train step" or (s["kind"], s["name"]) == ("breakdown", "matrix products"):
        return wl.train_flops(s["batch"])  # (the step's products are all its FLOPs)
    if s["kind"] == "inference":
        return wl.forward_flops(s["batch"])
    if s["kind"] in wl.KINDS:
        return wl.op_flops(s["name"], s["kind"], s["batch"])
    return None


class Coordinator:
    """The workers of one run, and the rows their groups gave."""

    def __init__(self, config, log=print):
        self.config, self.log, self.mode = config, log, MODES[config.mode]
        wanted = list(config.systems or DEFAULT)
        if config.old and "npcnn-old" not in wanted:
            wanted.insert(1, "npcnn-old")
        self.missing = {s: why for s in wanted if (why := self.why_not(s))}
        self.systems = [s for s in wanted if s not in self.missing]
        self.threads = config.threads or machine.affinity_cpus()
        self.rounds = config.rounds or self.mode["rounds"]
        self.pause = self.mode["pause_s"] if config.pause is None else config.pause
        settle = getattr(config, "settle", None)
        self.settle = self.mode["settle"] if settle is None else settle
        self.timeout = config.timeout or self.mode["timeout"]
        self.log_dir = tempfile.mkdtemp(prefix="npcnn-benchmarks-")
        self.workers, self.results, self.notes, self.cores = {}, [], [], "all"

    def why_not(self, system):
        if system == "npcnn-old" and not self.config.old:
            return "--old names no other checkout"
        if system == "torch-compile" and self.config.mode == "smoke":
            return "skipped in smoke mode (compiling takes about a minute)"
        return missing(system, self.config.device)

    def worker(self, system) -> Worker:
        one = self.cores == "one"
        key = (system, one)
        if key not in self.workers:
            cpu = min(os.sched_getaffinity(0)) if one else None
            npcnn = self.config.old if system == "npcnn-old" else None
            threads = 1 if one else self.threads
            self.workers[key] = Worker(
                system, threads, cpu, self.config.device, npcnn, self.timeout, self.log_dir
            )
        return self.workers[key]

    def close(self, keep=lambda key: False):
        """Stop the workers (those whose (system, one core) key ``keep`` refuses)."""
        for key in [k for k in self.workers if not keep(k)]:
            self.workers.pop(key).stop()

    # ------------------------------------------------------------ the stopwatch
    def group(self, cases, rounds=None) -> list[dict]:
        """Time ``cases`` [(system, spec)] interleaved; add and return their rows."""
        live, rows = [], []
        for system, s in cases:
            w = self.worker(system)
            try:
                answer = w.ask(do="prepare", id=len(live), spec=s, warmup=self.mode["warmup"],
                               block_s=self.mode["block_s"], max_reps=1000,
                               settle=self.settle)  # fmt: skip
            except WorkerError as e:
                rows.append(self.row(system, s, error=str(e)))
                continue
            if "skip" not in answer:  # no such case on this system: no row
                live.append({"system": system, "spec": s, "worker": w, "id": len(live),
                             "reps": answer["reps"], "samples": [],
                             "generation": w.generation})  # fmt: skip
        previous = None
        for r in range(rounds or self.rounds):
            shift = r % max(len(live), 1)
            for c in live[shift:] + live[:shift]:  # rotated: no system is always first
                if (
                    c["worker"].generation != c["generation"]
                ):  # prepared in a worker that died since
                    c.setdefault("error", "its worker crashed or hung while preparing another case")
                if "error" in c:
                    continue
                if previous is not None and previous != c["system"]:
                    time.sleep(self.pause)
                previous = c["system"]
                try:
                    c["samples"].append(c["worker"].ask(do="time", id=c["id"])["s"])
                except WorkerError as e:  # a crash or hang ends every case of that worker
                    for other in live:
                        if other.get("worker") is c["worker"] or other is c:
                            other.setdefault("error", str(e))
        for c in live:
            rows.append(self.row(c["system"], c["spec"], c["samples"], c["reps"], c.get("error")))
        for row in rows:
            self.show(row)
        self.results += rows
        return rows

    def row(self, system, s, samples=(), reps=0, error=None) -> dict:
        row = {**s, "impl": system, "cores": self.cores,
               "threads": 1 if self.cores == "one" else self.threads}  # fmt: skip
        if error or not samples:
            return {**row, "error": error or "no samples", "median_s": None}
        v = sorted(samples)
        median, f = statistics.median(v), flops(s)
        return {**row, "median_s": median, "min_s": v[0], "p25_s": quantile(v, 0.25),
                "p75_s": quantile(v, 0.75), "max_s": v[-1], "rounds": len(v),
                "reps_per_round": reps, "samples_s": v, "flops": f,
                "gflops_per_s": f / median / 1e9 if f else None}  # fmt: skip

    def show(self, r):
        what = (f"  {r['section']:<10} {r['name']:<13} {r['kind']:<17} {r['impl']:<14} "
                f"{r['cores']:<4} N={r['batch']:<5} {r['dtype']:<8}")  # fmt: skip
        if r.get("error"):
            self.log(f"{what} {r['error']}")
        else:
            self.log(f"{what} {r['median_s'] * 1e3:10.3f} ms "
                     f"[{r['min_s'] * 1e3:.3f} .. {r['max_s'] * 1e3:.3f}]")  # fmt: skip

    def peak(self) -> float | None:
        """GFLOP/s of a float32 matmul on all cores, now (the machine check)."""
        saved, self.cores = self.cores, "all"
        try:
            n = self.mode["peak"]
            rows = self.group([("numpy", spec("peak", f"{n}^3", "matmul", n))], rounds=3)
        finally:
            self.cores = saved
        self.results.remove(rows[0])
        return rows[0].get("gflops_per_s")

    # ------------------------------------------------------------ sections
    def matmul(self):
        impl = "npcnn" if self.config.device == "gpu" else "numpy"
        sizes = self.mode["matmul"] if impl == "numpy" else [4096]
        for n in sizes:
            self.group([(impl, spec("matmul", f"{n}^3", "matmul", n, d))
                        for d in ("float32", "float64")])  # fmt: skip

    def op(self):
        for n in self.config.batch_sizes or self.mode["op"]:
            for name in self.mode["ops"]:
                for kind in wl.KINDS:
                    systems = [s for s in self.systems if s not in ("torch-compile", "npcnn-old")
                               and (s != "npcnn-naive" or n in self.mode["naive"])]  # fmt: skip
                    self.group([(s, spec("op", name, kind, n)) for s in systems])

    def network(self, section, kind, n, rounds=None, dtype="float32"):
        systems = [s for s in self.systems if s in NETWORKS or ":" in s]
        if section != "headline":  # it compiles anew for every batch: the headline only
            systems = [s for s in systems if s != "torch-compile"]
        self.group([(s, spec(section, "seed cnn", kind, n, dtype)) for s in systems], rounds)

    def sweep(self, section, kind, batches):
        for n in batches:
            self.network(section, kind, n)

    def headline(self):
        rounds = self.config.headline_rounds or self.mode["headline_rounds"]
        self.network("headline", "train step", self.mode["headline_batch"], rounds)
        if self.cores != "busy":  # the busy machine: the step only
            self.network("headline", "inference", self.mode["headline_inference_batch"], rounds)

    def float64(self):
        n = self.mode["headline_batch"]
        self.group([(s, spec("float64", "seed cnn", "train step", n, d))
                    for s in ("npcnn", "npcnn-old") if s in self.systems
                    for d in ("float32", "float64")])  # fmt: skip

    def adam(self):
        for dtype in ("float32",) if self.config.mode == "smoke" else ("float32", "float64"):
            systems = [s for s in ("npcnn", "tf-eager", "tf-function") if s in self.systems]
            self.group([(s, spec("adam", "adam", "update", 0, dtype)) for s in systems])

    def breakdown(self):
        """npcnn's training step on one core in three parts: its matrix products,
        Adam's update, the rest (``breakdown.py``; the parts' sums would add up the
        threads' times on several cores, so on one core only)."""
        if self.cores != "one" or "npcnn" not in self.systems:
            return
        from .breakdown import PARTS

        n = self.mode["headline_batch"]
        for dtype in ("float32",) if self.config.mode == "smoke" else ("float32", "float64"):
            self.group([("npcnn", spec("breakdown", part, "breakdown", n, dtype))
                        for part in PARTS])  # fmt: skip

    def explore(self):
        """``npcnn explore``'s answer to one drawing: every layer's output and one
        class's gradients, as JSON (what the page waits for)."""
        if "npcnn" in self.systems:
            self.group([("npcnn", spec("explore", "one drawing", "drawing", 1))])

    def memory(self):
        from . import memory

        reason = memory.available()
        if reason:
            self.notes.append(reason)
            return
        n = self.mode["memory_images"]
        for batch in self.mode["memory_batches"]:
            for system in [s for s in ("npcnn", "tf-function") if s in self.systems]:
                s = spec("memory", "predict", "peak memory", n, batch_size=batch or "default")
                s |= {"impl": system, "cores": self.cores, "threads": self.threads}
                try:
                    row = {**s, "peak_bytes": memory.peak_bytes(system, n, batch)}
                    self.log(f"  memory {system}: {n} images, batch_size={batch}: "
                             f"{row['peak_bytes'] / 1e6:.0f} MB")  # fmt: skip
                except RuntimeError as e:
                    row = self.row(system, s, error=str(e))
                self.results.append(row)

    def kernels(self):
        if self.config.device != "gpu":
            self.notes.append("kernels: the fused CUDA kernels run with --device gpu only")
            return
        from .gpu import KERNELS

        for batch in (50, 1000):
            for name, variants in KERNELS.items():
                self.group([("npcnn", spec("kernels", name, "call", batch, variant=v))
                            for v in variants])  # fmt: skip

    def run_section(self, section):
        m = self.mode
        {"matmul": self.matmul, "op": self.op, "headline": self.headline,
         "train step": lambda: self.sweep("train step", "train step",
                                          self.config.batch_sizes or m["train"]),
         "inference": lambda: self.sweep("inference", "inference",
                                         self.config.inference_batch_sizes or m["inference"]),
         "float64": self.float64, "adam": self.adam, "memory": self.memory,
         "kernels": self.kernels, "explore": self.explore,
         "breakdown": self.breakdown}[section]()  # fmt: skip


BURN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass\n"


class Burner:
    """A process burning one CPU (a pure-Python loop, which ends with the process that
    started it) while the block runs: the laptop busy with something else."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", BURN])
        os.sched_setaffinity(self.proc.pid, {max(os.sched_getaffinity(0))})
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def sections_on(cores, sections, mode) -> list[str]:
    """The sections a core setting runs: all of them on all cores; on one core those
    of the mode's list; on the busy machine the headline step."""
    if cores == "all":
        return sections
    keep = MODES[mode]["one_core"] if cores == "one" else ["headline"]
    return [s for s in sections if s in keep]


def run(config, log=print) -> dict:
    """Run the sections asked for on the core settings asked for; return
    {'machine', 'settings', 'results', 'missing', 'notes', ...}."""
    started = time.time()
    sections = expand(config.sections or EVERYTHING)
    co = Coordinator(config, log)
    info = machine.machine_info(config.device)
    log(f"machine: {info['cpu_model']} ({info['vector']}, {info['logical_cpus']} CPUs, "
        f"{co.threads} threads); load average {machine.load_text(info['load_average_at_start'])}; "
        f"worker logs in {co.log_dir}")  # fmt: skip
    for system, reason in co.missing.items():
        log(f"note: {system}: no rows: {reason}")
    try:
        info["numpy_worker"] = co.worker("numpy").ask(do="info")["info"]
        info["peak_start_gflops"] = co.peak()
        for cores in config.cores:
            co.close(keep=lambda key, one=cores == "one": key[1] == one)  # memory: one set alive
            co.cores = cores
            for section in sections_on(cores, sections, config.mode):
                log(f"== {section} ({cores})")
                if cores == "busy":
                    with Burner():
                        co.run_section(section)
                else:
                    co.run_section(section)
        co.cores = "all"
        info["peak_end_gflops"] = co.peak()
    finally:
        co.close()
    info["load_average_at_end"] = machine.load_average()
    return {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": config.command,
        "mode": config.mode,
        "sections": sections,
        "cores": config.cores,
        "machine": info,
        "missing": co.missing,
        "settings": {"rounds": co.rounds, **co.mode, "pause_s": co.pause, "settle": co.settle},
        "notes": co.notes,
        "duration_s": round(time.time() - started, 1),
        "results": co.results,
    }
