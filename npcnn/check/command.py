"""The ``npcnn check`` and ``npcnn exercise`` subcommands (wired into ``npcnn/cli.py``)."""

from __future__ import annotations

import sys

from .spec import OPS

EXIT_FAILED = 1  # an op failed (or is not written yet)
EXIT_USAGE = 2  # nothing could be checked: no file, a file that does not import, no op
EXIT_INTERRUPTED = 130  # Ctrl-C, as npcnn train


def add_parsers(sub) -> None:
    """Add ``check`` and ``exercise`` to the subparsers ``sub`` of ``npcnn``."""
    from ..validation import RATE, SEED  # the argparse number types of npcnn

    names = ", ".join(op.name for op in OPS)
    c = sub.add_parser(
        "check",
        help="check your own forward/backward functions against npcnn's",
        description="Check the ops a file of yours defines (functions named like npcnn.ops's: "
        f"{names}; each <op>_forward and <op>_backward) on many small cases drawn by "
        "Hypothesis. Exit status: 0 all pass, 1 an op fails, 2 nothing could be checked.",
    )
    c.add_argument("file", help="your .py file (or a .ipynb notebook)")
    c.add_argument("--only", default=None, metavar="OPS", help="comma-separated ops to check")
    c.add_argument(
        "--against",
        default="npcnn",
        choices=["npcnn", "tf"],
        help="the reference: npcnn.ops (default) or TensorFlow's ops (needs TensorFlow)",
    )
    c.add_argument(
        "--profile",
        default="default",
        choices=["default", "thorough"],
        help="default: 15 cases per variant of an op (seconds); thorough: 150",
    )
    c.add_argument("--seed", type=SEED, default=None, help="the random seed of the search")
    c.add_argument(
        "--replay", default=None, metavar="OP:SEED", help="rerun one failure a report printed"
    )
    c.add_argument(
        "--time-limit",
        type=RATE,
        default=2.0,
        metavar="SECONDS",
        help="how long one case (your forward and backward) may take (default 2)",
    )

    e = sub.add_parser(
        "exercise",
        help="write a stub file to start writing an op yourself",
        description="Write a stub: the signatures, docstrings with the shapes and the math, and "
        "bodies that raise NotImplementedError. Fill it in, then run npcnn check on it.",
    )
    e.add_argument("ops", nargs="+", metavar="OP", help=f"one or more of: {names}, or all")
    e.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="the file to write (default my_<op>.py); a .ipynb name writes a Jupyter notebook",
    )
    e.add_argument("--force", action="store_true", help="replace PATH if it exists")


def run(args, prog: str = "npcnn") -> int:
    """Run ``check`` or ``exercise``; print the report or one error line; the exit status."""
    from . import UsageError, check, write_exercise

    try:
        if args.command == "exercise":
            path = write_exercise(args.ops, args.out, force=args.force)
            print(f"wrote {path}; fill it in, then run: {prog} check {path}")
            return 0
        report = check(
            args.file,
            only=args.only,
            against=args.against,
            profile=args.profile,
            seed=args.seed,
            replay=args.replay,
            time_limit=args.time_limit,
            command=f"{prog} check {args.file}",
        )
    except (UsageError, ValueError, OSError) as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(report)
    return report.exit_status
