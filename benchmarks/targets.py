"""Issue 12's targets table: npcnn's fast tier (old and new) against TensorFlow.

``python -m benchmarks --sections targets`` (or ``python -m benchmarks.targets``)
times, in interleaved rounds (every case once per round, rotated order; each time
a block of back-to-back calls, as a training loop runs its steps), medians:

- the training step at batch 50 (``train_step``: forward, loss, backward with
  ``need_dx=False``, Adam), float32 and float64;
- inference at batch 1000 (``model.predict``) against TF's fastest way;
- the same pinned to one core (this process re-run under ``taskset -c 0`` with
  BLAS and TF on one thread each), which also gives the 1 -> 2 core speed-up;
- the step's cost against the batch size (plotted).

"old" is another checkout's npcnn (``--old PATH``, e.g. a ``git worktree`` of
the commit before issue 12), loaded side by side in the same process
(``checkouts.py``) and timed in the same rounds as "new"; without ``--old`` the
old column is left empty. The issue's own figures are quoted as "issue".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

ISSUE = {  # the "today" column of issue 12
    "step_vs_tf": "1.27-1.36x",
    "step_vs_tf_1core": "0.78x",
    "speedup_1_to_2": "~1.15x",
    "inference_vs_tf": "0.50-0.70x",
    "inference_vs_tf_1core": "0.71x",
    "f64_over_f32": "1.64x",
}


def npcnn_step(package, dtype, n=50):
    from .checkouts import submodule

    model = package.seed_cnn(seed=0, dtype=dtype)
    opt = package.Adam(1e-3)
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float64).astype(dtype)
    labels = rng.integers(0, 10, n)
    train_step = submodule(package, "train").train_step
    return lambda: train_step(model, opt, x, labels)


def npcnn_predict(package, n=1000):
    model = package.seed_cnn(seed=0)
    x = np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)
    return lambda: model.predict(x)


def tf_cases(threads=None, n=50, n_inf=1000):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from .workloads import TfNetwork

    net = TfNetwork(tf, "float32")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((n, 28, 28, 1), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, n))
    xi = tf.constant(rng.random((n_inf, 28, 28, 1), dtype=np.float32))
    return {
        "tf step": lambda: net.train_step_function(x, y).numpy(),
        "tf predict": lambda: net.predict_function(xi).numpy(),
        "tf predict chunked": lambda: net.predict_chunked(xi).numpy(),
    }


def interleaved(cases, rounds, pause=0.1, block_s=0.3, max_reps=10):
    """{name: median seconds per call}: the suite's stopwatch (``timing.time_group``)
    on ``cases`` ({name: fn}): warm-up, interleaved rounds in rotated order, each
    a block of back-to-back calls (as many as fill ``block_s``, at most
    ``max_reps``; a training loop also runs step after step), and a ``pause``
    between NumPy and TF cases (names starting with "tf")."""
    from .timing import Case, Settings, time_group

    group = [
        Case("targets", str(name), "", str(name), "tf" if str(name).startswith("tf") else "numpy",
             0, "", fn)  # fmt: skip
        for name, fn in cases.items()
    ]
    settings = Settings(rounds=rounds, block_s=block_s, max_reps=max_reps, pause_s=pause)
    rows = time_group(group, settings, log=lambda *args: None)
    return {name: row["median_s"] for name, row in zip(cases, rows)}


def measure(rounds, threads=None, old=None):
    """Medians of every case, in this process (``threads=1``: one thread each)."""
    import npcnn

    limiter = None
    if threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=threads, user_api="blas")
    packages = {"new": npcnn}
    if old:
        from .checkouts import load_checkout

        packages["old"] = load_checkout(old)
    cases = {}
    for version, package in packages.items():
        cases[f"{version} step f32"] = npcnn_step(package, "float32")
        cases[f"{version} step f64"] = npcnn_step(package, "float64")
        cases[f"{version} predict"] = npcnn_predict(package)
    cases.update(tf_cases(threads))
    out = interleaved(cases, rounds)
    del limiter
    return out


def batch_curve(sizes, rounds):
    """npcnn's (new) float32 training step time for each batch size."""
    import npcnn

    cases = {n: npcnn_step(npcnn, "float32", n) for n in sizes}
    return {int(k): v for k, v in interleaved(cases, rounds, pause=0.02).items()}


def one_core(rounds, old=None):
    """Re-run this module pinned to CPU 0 with one thread each; its medians."""
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "benchmarks.targets"]
    cmd += ["--one-core-child", "--rounds", str(rounds)] + (["--old", old] if old else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(two, one):
    """Rows (what, issue's figure, old, new, target) from the two runs' medians
    ("-" for old when no old checkout was timed)."""
    for run in (two, one):
        run["tf fastest predict"] = min(run["tf predict"], run["tf predict chunked"])

    def ratio(num_run, num, den_run, den):
        if num not in num_run or den not in den_run:
            return "-"
        return f"{num_run[num] / den_run[den]:.2f}x"

    def both(num_run, num, den_run, den):  # (old, new); "{v}" is the version
        return tuple(
            ratio(num_run, num.format(v=v), den_run, den.format(v=v)) for v in ("old", "new")
        )

    rows = [
        ("training step, batch 50, vs TF tf.function (all cores)", "step_vs_tf",
         *both(two, "{v} step f32", two, "tf step"), "<= 1.0x"),
        ("same, one core", "step_vs_tf_1core", *both(one, "{v} step f32", one, "tf step"),
         "<= 0.7x"),
        ("npcnn step speed-up 1 -> 2 cores (TF: "
         f"{one['tf step'] / two['tf step']:.2f}x here)", "speedup_1_to_2",
         *both(one, "{v} step f32", two, "{v} step f32"), ">= 1.8x"),
        ("inference, batch 1000, throughput vs TF's fastest", "inference_vs_tf",
         *both(two, "tf fastest predict", two, "{v} predict"), ">= 0.9x"),
        ("inference, one core, vs TF's fastest", "inference_vs_tf_1core",
         *both(one, "tf fastest predict", one, "{v} predict"), ">= 1.0x"),
        ("float64 / float32 training step", "f64_over_f32",
         *both(two, "{v} step f64", two, "{v} step f32"), "<= 1.6x"),
    ]  # fmt: skip
    return [(what, ISSUE[key], old, new, target) for what, key, old, new, target in rows]


def matmul_peak(size=2048, rounds=5):
    """{dtype: GFLOP/s} of a square NumPy product on all cores, timed as the suite's
    matmul section times it (the peak the issue asks to state with every figure)."""
    rng = np.random.default_rng(0)
    a32 = rng.standard_normal((size, size)).astype(np.float32)
    a64 = a32.astype(np.float64)
    cases = {"float32": lambda: a32 @ a32, "float64": lambda: a64 @ a64}
    return {dtype: 2 * size**3 / t / 1e9 for dtype, t in interleaved(cases, rounds, 0).items()}


def machine_line(peaks):
    """One line: the CPU, its cores, BLAS, the measured matmul peak."""
    from .machine import _blas_info, _cpu_model

    pools = [
        f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
        for p in _blas_info().get("pools", [])
        if p.get("user_api") == "blas"
    ]
    return (
        f"Machine: {_cpu_model()}, {os.cpu_count()} CPUs, NumPy {np.__version__}"
        f" + {', '.join(pools) or 'BLAS'}; matmul peak (2048^3, median) "
        f"{peaks['float32']:.0f} GFLOP/s float32, {peaks['float64']:.0f} GFLOP/s float64; "
        f"load average at the end {os.getloadavg()[0]:.2f}."
    )


def markdown(two, one, curve, machine=""):
    lines = [machine, ""] if machine else []
    lines += [
        "| what | issue (today) | old (measured now) | new | target |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table(two, one)]
    lines += ["", "Medians (ms), all cores | one core:", ""]
    lines += [f"- {k}: {two[k] * 1e3:.1f} | {one[k] * 1e3:.1f}" for k in two]
    lines += ["", "Training step vs batch size (new, float32, all cores):", ""]
    lines += [f"- N={n}: {t * 1e3:.2f} ms, {t / n * 1e6:.0f} us/image" for n, t in curve.items()]
    return "\n".join(lines) + "\n"


def plot_curve(curve, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    sizes = list(curve)
    ax.loglog(sizes, [curve[n] * 1e3 for n in sizes], "o-", label="npcnn (fast tier) step")
    ref = curve[sizes[-1]] / sizes[-1]
    ax.loglog(sizes, [ref * n * 1e3 for n in sizes], "--", color="grey", label="linear")
    ax.set_xlabel("batch size")
    ax.set_ylabel("training step (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_targets(
    rounds=5, sizes=(1, 4, 16, 32, 64, 128, 256), out="benchmark_results", log=print, old=None
):
    """Measure everything, write ``targets.md``/``targets.json``/``cost_vs_batch.png``
    and the step's breakdown per op (``breakdown.py``: ``step_breakdown.png``)."""
    from . import breakdown

    peaks = matmul_peak()
    log("targets: one-core run (taskset -c 0, one thread each) ...")
    one = one_core(rounds, old)
    log("targets: all-cores run ...")
    two = measure(rounds, old=old)
    curve = batch_curve(sizes, rounds)
    log("targets: where the step's time goes ...")
    split = breakdown.measure(max(rounds, 5), old)
    os.makedirs(out, exist_ok=True)
    breakdown.write(split, out)
    md = markdown(two, one, curve, machine_line(peaks))
    md += "\nWhere the step's time goes (ms, medians):\n\n"
    md += breakdown.markdown(split)
    with open(os.path.join(out, "targets.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "targets.json"), "w") as f:
        data = {"all_cores": two, "one_core": one, "batch_curve": curve, "matmul_peak": peaks}
        json.dump(data, f, indent=1)
    plot_curve(curve, os.path.join(out, "cost_vs_batch.png"))
    log(md)
    return md


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.targets")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default="benchmark_results")
    p.add_argument("--old", help="another npcnn checkout, timed as 'old' (e.g. a git worktree)")
    p.add_argument("--one-core-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one_core_child:
        print(json.dumps(measure(args.rounds, threads=1, old=args.old)))
        return 0
    run_targets(args.rounds, out=args.out, old=args.old)
    return 0


if __name__ == "__main__":
    sys.exit(main())
