"""The default (fast) path of two commits, side by side: ``python -m benchmarks.ab_commits``.

Answers "did this change make npcnn slower?" for a whole commit, where the
rest of the suite compares npcnn with TensorFlow. Each round starts one fresh
process per commit (the order alternates), each process imports *its*
checkout of npcnn, warms up and times the public calls a user makes:

- ``train_step(model, Adam(1e-3), x, labels)`` on the seed network, batch 50;
- ``model.predict(x)`` at batch 1000.

It prints the median of the per-process medians for each commit and their
ratio. ``--old`` must be a folder holding another checkout, for example one
made with ``git worktree add --detach /tmp/npcnn-old 3f98819``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, statistics, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import npcnn
from npcnn.train import train_step
assert npcnn.__file__.startswith(sys.argv[1]), npcnn.__file__
reps, dtype = int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
model = npcnn.seed_cnn(seed=0, dtype=dtype)
opt = npcnn.Adam(1e-3)
x = rng.random((50, 28, 28, 1)).astype(dtype)
labels = rng.integers(0, 10, 50)
xi = rng.random((1000, 28, 28, 1)).astype(dtype)
cases = {"train step b50": lambda: train_step(model, opt, x, labels),
         "predict b1000": lambda: model.predict(xi)}
out = {}
for name, fn in cases.items():
    fn(); fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    out[name] = statistics.median(times)
print(json.dumps(out))
"""


def run_child(checkout, reps, dtype, pin):
    cmd = [sys.executable, "-c", CHILD, os.path.abspath(checkout), str(reps), dtype]
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1") if pin else None
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab_commits", description=__doc__)
    p.add_argument("--old", required=True, help="folder of the other checkout")
    p.add_argument("--new", default=".", help="folder of this checkout (default: .)")
    p.add_argument("--rounds", type=int, default=5, help="processes per commit")
    p.add_argument("--reps", type=int, default=7, help="timed calls per process and case")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--one-core", action="store_true", help="taskset -c 0, one BLAS thread")
    args = p.parse_args(argv)
    runs = {"old": [], "new": []}
    for r in range(args.rounds):
        for which in ("old", "new") if r % 2 == 0 else ("new", "old"):
            checkout = args.old if which == "old" else args.new
            runs[which].append(run_child(checkout, args.reps, args.dtype, args.one_core))
    where = "one core" if args.one_core else "all cores"
    print(f"{args.dtype}, {where}, {args.rounds} processes x {args.reps} calls each (median ms)")
    print("| case | old | new | new / old |")
    print("|---|---|---|---|")
    for case in runs["old"][0]:
        old = statistics.median(run[case] for run in runs["old"]) * 1e3
        new = statistics.median(run[case] for run in runs["new"]) * 1e3
        print(f"| {case} | {old:.1f} | {new:.1f} | {new / old:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
