"""What a checkpoint costs a training run: ``python -m benchmarks.checkpoint_cost``.

Times, interleaved in one process, the tutorial's training step (seed CNN,
Adam, batch 50) and one checkpoint write of that run (weights, Adam's two
moments, sampler state and history: ``fit``'s own ``save_checkpoint`` call,
atomic, fsynced) into a folder (``--dir``, default a temporary one). Each
round runs ``--steps-per-round`` steps, then writes one checkpoint; the
medians over the rounds give the cost per step of checkpointing every N
steps: checkpoint / (N x step).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def measure(dtype="float32", rounds=7, steps_per_round=10, folder=None, batch=50, seed=0):
    """Median seconds of one training step and of one checkpoint write."""
    from npcnn.checkpoint import save_checkpoint
    from npcnn.train import TrainConfig, make_numpy_learner

    learner = make_numpy_learner(TrainConfig(dtype=dtype, seed=seed))
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 28, 28, 1)).astype(dtype)
    labels = rng.integers(0, 10, batch)
    history = {"loss": [], "eval": []}
    learner.train_step(x, labels)  # warm-up: buffers, moments
    step_times, write_times = [], []
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "run.npz"
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(steps_per_round):
                history["loss"].append(learner.train_step(x, labels))
            step_times.append((time.perf_counter() - start) / steps_per_round)
            start = time.perf_counter()
            named = learner.named_params()
            state = learner.optimizer_state()
            meta = {"step": len(history["loss"]), "history": history}
            save_checkpoint(path, named, state, rng.bit_generator.state, meta)
            write_times.append(time.perf_counter() - start)
        size = path.stat().st_size
    return statistics.median(step_times), statistics.median(write_times), size


def main(argv=None):
    from npcnn.train import TrainConfig

    p = argparse.ArgumentParser(prog="python -m benchmarks.checkpoint_cost", description=__doc__)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps-per-round", type=int, default=10)
    p.add_argument("--dir", default=None, help="where to write (default: the temp folder)")
    p.add_argument("--every", type=int, default=TrainConfig.save_every, help="N to report for")
    args = p.parse_args(argv)
    step, write, size = measure(args.dtype, args.rounds, args.steps_per_round, args.dir)
    print(f"train step (batch 50, {args.dtype}): {step * 1e3:.1f} ms median")
    print(f"checkpoint write ({size / 2**20:.1f} MiB): {write * 1e3:.1f} ms median")
    print(
        f"checkpoint every {args.every} steps: +{write / args.every * 1e3:.3f} ms per step, "
        f"{100 * write / (args.every * step):.2f}% of the step time; "
        f"one every {args.every * step:.0f} s of training"
    )


if __name__ == "__main__":
    main()
