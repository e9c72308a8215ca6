"""Command line: ``npcnn train`` and ``npcnn evaluate`` (also ``python -m npcnn ...``).

``python -m tfcnn train`` uses the same parser and loop with the TensorFlow
twin, so the two can be compared run for run.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .train import TrainConfig, evaluate, fit, make_numpy_learner


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the dataset's four IDX files (default: NPCNN_DATA_DIR, "
        "the cache, or download)",
    )
    p.add_argument("--eval-batch-size", type=int, default=1000, help="batch size for evaluation")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "gpu"],
        help="gpu runs npcnn on CuPy (npcnn only)",
    )
    p.add_argument(
        "--limit-test",
        type=int,
        default=None,
        metavar="N",
        help="evaluate on the first N test images only",
    )
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots into DIR")


def build_parser(prog: str = "npcnn", framework: str = "npcnn") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Train and evaluate the tutorial CNN with {framework}.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the tutorial CNN (defaults: the tutorial's settings)")
    add_data_arguments(t)
    t.add_argument("--epochs", type=int, default=5)
    t.add_argument("--steps", type=int, default=None, help="number of steps (overrides --epochs)")
    t.add_argument("--batch-size", type=int, default=50)
    t.add_argument("--learning-rate", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    if framework == "npcnn":
        t.add_argument(
            "--kernels",
            default="fast",
            choices=["fast", "ops"],
            help="fast: every speed trick (default); ops: the readable reference ops, same numbers",
        )
    t.add_argument(
        "--eval-every-epoch",
        action="store_true",
        help="also evaluate on the test set after every epoch",
    )
    t.add_argument(
        "--save",
        default=None,
        metavar="PATH",
        help="checkpoint file (.npz), written every epoch, at the end and on Ctrl-C",
    )
    t.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint")
    t.add_argument(
        "--limit-train",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N training images only",
    )

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of saved weights")
    add_data_arguments(e)
    e.add_argument(
        "--weights",
        required=True,
        metavar="PATH",
        help="checkpoint from `npcnn train --save` or `tfcnn train --save`",
    )
    return parser


def load_data(args):
    from .data import load_dataset

    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset, args.data_dir)
    limit_train = getattr(args, "limit_train", None)
    if limit_train is not None:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    if args.limit_test is not None:
        x_test, y_test = x_test[: args.limit_test], y_test[: args.limit_test]
    return (x_train, y_train), (x_test, y_test)


def config_from_args(args) -> TrainConfig:
    names = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def format_confusion(confusion) -> str:
    """The confusion matrix as a text table (rows: true class, columns: predicted)."""
    k = confusion.shape[0]
    head = "true\\pred " + " ".join(f"{j:>5}" for j in range(k))
    rows = [f"{i:>9} " + " ".join(f"{c:>5}" for c in confusion[i]) for i in range(k)]
    return "\n".join([head, *rows])


def run_train(args, make_learner, log=print) -> dict:
    """Shared by ``npcnn train`` and ``tfcnn train``: load data, fit, report, plot."""
    config = config_from_args(args)
    data = load_data(args)
    learner = make_learner(config)
    start = time.perf_counter()
    try:
        result = fit(learner, data, config, log=log)
    except KeyboardInterrupt:
        return {"interrupted": True}
    wall = time.perf_counter() - start
    log(f"wall time: {wall:.1f} s ({result['steps']} steps)")
    log(f"test accuracy: {result['accuracy']:.4f}")
    if config.save:
        log(f"checkpoint: {config.save}")
    if config.plots:
        from . import plots

        written = plots.training_plots(
            config.plots,
            result["history"],
            learner,
            data[1][0][0],
            result["confusion"],
            config.dtype,
        )
        log("plots: " + ", ".join(str(p) for p in written))
    result["wall_time"] = wall
    return result


def run_evaluate(args, log=print) -> dict:
    from .checkpoint import load_checkpoint, weights_for
    from .model import seed_cnn
    from .optimizers import Adam
    from .train import NumpyLearner

    ckpt = load_checkpoint(args.weights)
    model = seed_cnn(dtype=args.dtype)
    names = [(name, p.shape) for name, p in model.named_params()]
    model.set_weights(weights_for(names, ckpt["weights"], args.weights))
    learner = NumpyLearner(model, Adam(), args.device)
    _, (x_test, y_test) = load_data(args)
    accuracy, confusion = evaluate(learner, x_test, y_test, args.eval_batch_size, args.dtype)
    trained_by = ckpt["meta"].get("framework", "?")
    log(f"weights: {args.weights} (trained by {trained_by}, step {ckpt['meta'].get('step')})")
    log(format_confusion(confusion))
    log(f"test accuracy: {accuracy:.4f}")
    if args.plots:
        from . import plots

        log("plots: " + str(plots.plot_confusion(confusion, args.plots)))
    return {"accuracy": accuracy, "confusion": confusion}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            result = run_train(args, make_numpy_learner)
            return 130 if result.get("interrupted") else 0
        run_evaluate(args)
        return 0
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"npcnn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    np.set_printoptions(linewidth=120)
    sys.exit(main())
