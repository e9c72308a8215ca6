"""Issue 12's targets table: npcnn's fast tier (old and new) against TensorFlow.

``python -m benchmarks --sections targets`` (or ``python -m benchmarks.targets``)
times, in interleaved rounds (every case once per round, rotated order), medians:

- the training step at batch 50 (``train_step``: forward, loss, backward with
  ``need_dx=False``, Adam), float32 and float64;
- inference at batch 1000 (``model.predict``) against TF's fastest way;
- the same pinned to one core (this process re-run under ``taskset -c 0`` with
  BLAS and TF on one thread each), which also gives the 1 -> 2 core speed-up;
- the step's cost against the batch size (plotted).

"old" is the fast tier without the fused Conv2D(relu)+MaxPool2D block (the
code before issue 12; ``Sequential._fused_blocks`` returns nothing), timed in
the same rounds as "new"; the issue's own figures are quoted as "issue".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ISSUE = {  # the "today" column of issue 12
    "step_vs_tf": "1.27-1.36x",
    "step_vs_tf_1core": "0.78x",
    "speedup_1_to_2": "~1.15x",
    "inference_vs_tf": "0.50-0.70x",
    "inference_vs_tf_1core": "0.71x",
    "f64_over_f32": "1.64x",
}


def npcnn_step(dtype, fused, n=50):
    import npcnn
    from npcnn.train import train_step

    model = npcnn.seed_cnn(seed=0, dtype=dtype)
    if not fused:
        model._fused_blocks = set  # the old path: separate conv, ReLU and pool
    opt = npcnn.Adam(1e-3)
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float64).astype(dtype)
    labels = rng.integers(0, 10, n)
    return lambda: train_step(model, opt, x, labels)


def npcnn_predict(fused, n=1000):
    import npcnn

    model = npcnn.seed_cnn(seed=0)
    if not fused:
        model._fused_blocks = set
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


def interleaved(cases, rounds, pause=0.1):
    """{name: median seconds} over ``rounds`` rounds, each case once per round."""
    for fn in cases.values():  # warm-up
        fn(), fn()
    times = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            cases[name]()
            times[name].append(time.perf_counter() - t)
            time.sleep(pause)
    return {name: statistics.median(v) for name, v in times.items()}


def measure(rounds, threads=None):
    """Medians of every case, in this process (``threads=1``: one thread each)."""
    limiter = None
    if threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=threads, user_api="blas")
    cases = {
        "new step f32": npcnn_step("float32", True),
        "old step f32": npcnn_step("float32", False),
        "new step f64": npcnn_step("float64", True),
        "old step f64": npcnn_step("float64", False),
        "new predict": npcnn_predict(True),
        "old predict": npcnn_predict(False),
    }
    cases.update(tf_cases(threads))
    out = interleaved(cases, rounds)
    del limiter
    return out


def batch_curve(sizes, rounds):
    """npcnn's (new) float32 training step time for each batch size."""
    cases = {n: npcnn_step("float32", True, n) for n in sizes}
    return {int(k): v for k, v in interleaved(cases, rounds, pause=0.02).items()}


def one_core(rounds):
    """Re-run this module pinned to CPU 0 with one thread each; its medians."""
    cmd = ["taskset", "-c", "0", sys.executable, "-m", "benchmarks.targets"]
    cmd += ["--one-core-child", "--rounds", str(rounds)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(two, one):
    """Rows (what, issue's figure, old, new, target) from the two runs' medians."""
    tf_inf2 = min(two["tf predict"], two["tf predict chunked"])
    tf_inf1 = min(one["tf predict"], one["tf predict chunked"])

    def x(v):
        return f"{v:.2f}x"

    def vs(run, case, ref):
        return x(run[f"old {case}"] / run[ref]), x(run[f"new {case}"] / run[ref])

    rows = [
        ("training step, batch 50, vs TF tf.function (all cores)", "step_vs_tf",
         *vs(two, "step f32", "tf step"), "<= 1.0x"),
        ("same, one core", "step_vs_tf_1core",
         *vs(one, "step f32", "tf step"), "<= 0.7x"),
        ("npcnn step speed-up 1 -> 2 cores (TF: "
         f"{one['tf step'] / two['tf step']:.2f}x here)", "speedup_1_to_2",
         x(one["old step f32"] / two["old step f32"]),
         x(one["new step f32"] / two["new step f32"]), ">= 1.8x"),
        ("inference, batch 1000, throughput vs TF's fastest", "inference_vs_tf",
         x(tf_inf2 / two["old predict"]), x(tf_inf2 / two["new predict"]), ">= 0.9x"),
        ("inference, one core, vs TF's fastest", "inference_vs_tf_1core",
         x(tf_inf1 / one["old predict"]), x(tf_inf1 / one["new predict"]), ">= 1.0x"),
        ("float64 / float32 training step", "f64_over_f32",
         x(two["old step f64"] / two["old step f32"]),
         x(two["new step f64"] / two["new step f32"]), "<= 1.6x"),
    ]  # fmt: skip
    return [(what, ISSUE[key], old, new, target) for what, key, old, new, target in rows]


def markdown(two, one, curve):
    lines = [
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


def run_targets(rounds=5, sizes=(1, 4, 16, 32, 64, 128, 256), out="benchmark_results", log=print):
    """Measure everything, write ``targets.md``/``targets.json``/``cost_vs_batch.png``."""
    log("targets: one-core run (taskset -c 0, one thread each) ...")
    one = one_core(rounds)
    log("targets: all-cores run ...")
    two = measure(rounds)
    curve = batch_curve(sizes, rounds)
    os.makedirs(out, exist_ok=True)
    md = markdown(two, one, curve)
    with open(os.path.join(out, "targets.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "targets.json"), "w") as f:
        json.dump({"all_cores": two, "one_core": one, "batch_curve": curve}, f, indent=1)
    plot_curve(curve, os.path.join(out, "cost_vs_batch.png"))
    log(md)
    return md


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.targets")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default="benchmark_results")
    p.add_argument("--one-core-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one_core_child:
        print(json.dumps(measure(args.rounds, threads=1)))
        return 0
    run_targets(args.rounds, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
