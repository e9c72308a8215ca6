"""Command line: ``npcnn train``, ``npcnn evaluate``, ``npcnn predict``, ``npcnn check``,
``npcnn exercise`` and ``npcnn explore`` (also ``python -m npcnn ...``).

``python -m tfcnn train`` uses the same parser and loop with the TensorFlow
twin, so the two can be compared run for run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .schedules import SCHEDULES
from .train import TrainConfig, TrainingDiverged, evaluate, fit, make_numpy_learner, total_steps
from .validation import COUNT, RATE, SEED, check_writable_dir, check_writable_file
from .zoo import MODELS

EXIT_ERROR = 2  # bad arguments (argparse's own code), unreadable files, full disk...
EXIT_DIVERGED = 3  # the loss became NaN or inf; the last good checkpoint is kept
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)

# what main() reports as one line instead of a traceback
EXPECTED_ERRORS = (ValueError, OSError, RuntimeError, ArithmeticError, ImportError, MemoryError)


def check_paths(args) -> None:
    """Check the files a command will read and write, before loading data or training."""
    if getattr(args, "save", None) is not None:
        check_writable_file(args.save, "--save")
    if getattr(args, "output", None) is not None:
        check_writable_file(args.output, "--output")
    for option in ("resume", "weights", "model", "images"):
        path = getattr(args, option, None)
        if path is not None and not os.path.isfile(path):
            flag = "--" + option if option != "images" else "IMAGES"
            what = "file" if option == "images" else "checkpoint"
            if not os.path.exists(path):
                raise FileNotFoundError(f"{flag}: no {what} at {path}")
            raise ValueError(f"{flag}: {path} is not a regular file")
    if getattr(args, "plots", None) is not None:
        check_writable_dir(args.plots, "--plots")


def add_data_arguments(p: argparse.ArgumentParser, framework: str = "npcnn") -> None:
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the dataset's four IDX files (default: NPCNN_DATA_DIR, "
        "the cache, or download)",
    )
    p.add_argument("--eval-batch-size", type=COUNT, default=1000, help="batch size for evaluation")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    if framework == "npcnn":  # TensorFlow picks its own device
        p.add_argument(
            "--device", default="cpu", choices=["cpu", "gpu"], help="gpu runs npcnn on CuPy"
        )
    p.add_argument(
        "--limit-test",
        type=COUNT,
        default=None,
        metavar="N",
        help="evaluate on the first N test images only",
    )
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots into DIR")


def build_parser(prog: str = "npcnn", framework: str = "npcnn") -> argparse.ArgumentParser:
    npcnn = framework == "npcnn"
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Train {'and evaluate ' if npcnn else ''}the tutorial CNN with {framework}.",
        epilog=None
        if npcnn
        else "Evaluate or deploy its checkpoints with npcnn: "
        "`npcnn evaluate --weights PATH`, `npcnn predict --model PATH IMAGES.npy`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub, framework)
    if npcnn:  # tfcnn only trains; npcnn evaluates and predicts for both
        add_model_parsers(sub)
        from .check.command import add_parsers  # npcnn check / exercise: a learner's own ops
        from .explore.command import add_parser  # npcnn explore: the network, in the browser

        add_parsers(sub)
        add_parser(sub)
    return parser


def add_train_parser(sub, framework: str) -> None:
    """``train``: the tutorial's loop, its data, its settings and its checkpoints."""
    t = sub.add_parser("train", help="train the tutorial CNN (defaults: the tutorial's settings)")
    add_data_arguments(t, framework)
    t.add_argument("--epochs", type=COUNT, default=5)
    t.add_argument("--steps", type=COUNT, default=None, help="number of steps (overrides --epochs)")
    t.add_argument("--batch-size", type=COUNT, default=50)
    t.add_argument("--learning-rate", type=RATE, default=1e-3)
    t.add_argument(
        "--lr-schedule",
        default="constant",
        choices=SCHEDULES,
        help="constant (default): --learning-rate throughout; cosine: from --learning-rate "
        "down to 0 along half a cosine over the run (Keras's CosineDecay)",
    )
    t.add_argument("--seed", type=SEED, default=0)
    t.add_argument(
        "--model",
        dest="network",  # not a file, as predict's --model is
        default="seed",
        choices=list(MODELS),
        help="seed: the tutorial's CNN (default); modern: conv-BN-ReLU blocks, global "
        "average pooling and dropout (npcnn.zoo)",
    )
    if framework == "npcnn":
        t.add_argument(
            "--kernels",
            default="fast",
            choices=["fast", "ops"],
            help="fast: every speed trick (default); ops: the readable reference ops, the "
            "same numbers up to rounding",
        )
    t.add_argument(
        "--limit-train",
        type=COUNT,
        default=None,
        metavar="N",
        help="train on the first N training images only",
    )
    add_monitor_arguments(t)
    add_checkpoint_arguments(t)


def add_monitor_arguments(t) -> None:
    """What ``train`` measures as it goes, for the log and the curves."""
    t.add_argument(
        "--eval-every-epoch",
        action="store_true",
        help="also evaluate on the test set after every epoch",
    )
    t.add_argument(
        "--monitor-every",
        type=SEED,
        default=None,
        metavar="N",
        help="record the accuracy on a held-out subset every N steps, for the curves "
        "(default: about 20 times a run with --plots, else never; 0: never)",
    )
    t.add_argument(
        "--monitor-size",
        type=COUNT,
        default=1000,
        metavar="N",
        help="that subset: the first N test images (default 1000)",
    )


def add_checkpoint_arguments(t) -> None:
    """Where ``train`` saves its state, how often, and resuming from it."""
    t.add_argument(
        "--save",
        default=None,
        metavar="PATH",
        help="checkpoint file (.npz), written every --save-every steps, every epoch, at the "
        "end and on Ctrl-C, each time whole (written aside, then renamed over the old one); "
        "never overwritten by a diverged run (that state goes to PATH.diverged.npz)",
    )
    t.add_argument(
        "--save-every",
        type=SEED,
        default=TrainConfig.save_every,
        metavar="N",
        help=f"also checkpoint every N steps (default {TrainConfig.save_every}; 0: only at epoch "
        "ends). If the process is killed outright (kill -9, out of memory, power cut), "
        "`--resume PATH` continues from the last checkpoint and ends exactly as an "
        "uninterrupted run: kept are the weights, optimizer and sampler state and the history "
        "up to that checkpoint; lost are at most the N steps since, which are redone",
    )
    t.add_argument("--resume", default=None, metavar="PATH", help="continue from a checkpoint")


def add_model_parsers(sub) -> None:
    """``npcnn evaluate`` and ``npcnn predict``: any model file or checkpoint."""
    about = (
        "a model file (model.save, tfcnn.to_npcnn(...).save) or a checkpoint "
        "(npcnn/tfcnn train --save)"
    )
    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a saved model")
    add_data_arguments(e)
    e.add_argument("--weights", "--model", required=True, metavar="PATH", help=about)
    p = sub.add_parser("predict", help="a saved model's predictions for images in a .npy file")
    p.add_argument("--model", required=True, metavar="PATH", help=about)
    p.add_argument(
        "images",
        metavar="IMAGES",
        help="a .npy array (N, ...) of images: integer pixels are scaled to [0, 1], floats used "
        "as given; a missing channel axis is added",
    )
    p.add_argument(
        "--output", default=None, metavar="PATH", help="also write the model's outputs (.npy)"
    )
    p.add_argument("--batch-size", type=COUNT, default=128)


def load_data(args):
    from .datasets import load_dataset

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
    if config.lr_schedule != "constant" and config.decay_steps is None:  # over the whole run
        config.decay_steps = total_steps(config, len(data[0][0]))
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
    from .checkpoint import load_checkpoint
    from .modelfile import model_from_checkpoint
    from .optimizers import Adam
    from .train import NumpyLearner

    ckpt = load_checkpoint(args.weights)
    model = model_from_checkpoint(ckpt, args.weights, dtype=args.dtype)
    learner = NumpyLearner(model, Adam(), args.device)
    _, (x_test, y_test) = load_data(args)
    check_fits(model, x_test[:1], f"the {args.dataset} test images", args.weights)
    accuracy, confusion = evaluate(learner, x_test, y_test, args.eval_batch_size, args.dtype)
    trained_by = ckpt["meta"].get("framework", "?")
    log(f"weights: {args.weights} (trained by {trained_by}, step {ckpt['meta'].get('step')})")
    log(format_confusion(confusion))
    log(f"test accuracy: {accuracy:.4f}")
    if args.plots:
        from . import plots

        log("plots: " + str(plots.plot_confusion(confusion, args.plots)))
    return {"accuracy": accuracy, "confusion": confusion}


def check_fits(model, images, what, path):
    """``ValueError`` unless ``images`` (N, ...), made inputs, have the shape ``model`` takes."""
    from .inputs import images_to_inputs

    shape = images_to_inputs(images, model.dtype, model.input_shape).shape[1:]
    if tuple(shape) != model.input_shape:
        raise ValueError(
            f"the model in {path} takes inputs of shape {model.input_shape}, but {what} are "
            f"{tuple(images.shape[1:])}; give it images of its own shape "
            "(npcnn predict --model PATH IMAGES.npy)"
        )


def run_predict(args, log=print) -> dict:
    """``npcnn predict``: the class of each image in a .npy file, and optionally the outputs."""
    from .atomicwrite import atomic_write
    from .inputs import images_to_inputs
    from .modelfile import load_model

    model = load_model(args.model)
    try:
        images = np.load(args.images, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"IMAGES: {args.images} is not a readable .npy array ({exc})") from None
    if not isinstance(images, np.ndarray) or images.dtype.kind not in "biuf":
        raise ValueError(f"IMAGES: {args.images} must be one numeric .npy array (N, ...)")
    check_fits(model, images, f"the images in {args.images}", args.model)
    outputs = model.predict(
        images_to_inputs(images, model.dtype, model.input_shape), args.batch_size
    )
    classes = outputs.argmax(axis=1)
    for i, c in enumerate(classes):
        log(f"{i} {c}")
    if args.output:
        atomic_write(args.output, lambda f: np.save(f, outputs))
        log(f"outputs {outputs.shape}: {args.output}")
    return {"outputs": outputs, "classes": classes}


def run_command(prog: str, command) -> int:
    """Run ``command()`` (returns an exit status) and turn every expected failure
    into one line ``prog: error: ...`` on stderr and a non-zero status, never a
    traceback: 3 when training diverged, 130 on Ctrl-C, 2 for anything else."""
    try:
        return command()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingDiverged as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except EXPECTED_ERRORS as exc:
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
            message += f": {exc.filename}"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def main(argv=None) -> int:
    """``npcnn train|evaluate|predict``: exit status 0, 2 (error, one line), 3 (diverged),
    130 (Ctrl-C).

    Bad arguments end in argparse's usage message and ``SystemExit(2)``.
    """
    args = build_parser().parse_args(argv)
    if args.command in ("check", "exercise"):
        from .check.command import run

        return run(args)
    if args.command == "explore":
        from .explore.command import run

        return run(args)

    def command():
        check_paths(args)
        if args.command == "train":
            result = run_train(args, make_numpy_learner)
            return EXIT_INTERRUPTED if result.get("interrupted") else 0
        (run_predict if args.command == "predict" else run_evaluate)(args)
        return 0

    return run_command("npcnn", command)


if __name__ == "__main__":
    np.set_printoptions(linewidth=120)
    sys.exit(main())
