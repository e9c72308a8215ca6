"""``python -m benchmarks``: time npcnn against TensorFlow and write JSON, Markdown, PNGs.

Examples::

    python -m benchmarks --mode quick                 # a few minutes on 2 cores
    python -m benchmarks --mode full --out benchmarks/results
    python -m benchmarks --sections headline --headline-rounds 21
    python -m benchmarks --device gpu --mode quick    # npcnn on CuPy (TF on GPU if present)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv=None):
    from .suite import MODES, SECTIONS

    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--mode",
        choices=list(MODES),
        default="quick",
        help="smoke (seconds), quick (minutes) or full (about 10-15 min on 2 cores)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="gpu: npcnn on CuPy arrays; needs CuPy and a GPU",
    )
    p.add_argument(
        "--batch-sizes",
        type=_ints,
        default=None,
        help="comma-separated batch sizes for the op and train sections",
    )
    p.add_argument("--inference-batch-sizes", type=_ints, default=None)
    p.add_argument(
        "--sections",
        type=lambda s: [x.strip() for x in s.split(",")],
        default=None,
        help=f"comma-separated subset of: {', '.join(SECTIONS)}, targets (issue 12's table)",
    )
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per group")
    p.add_argument("--headline-rounds", type=int, default=None)
    p.add_argument(
        "--pause",
        type=float,
        default=None,
        help="seconds to pause between NumPy and TF cases (default 0.15)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS threads (threadpoolctl) and TF intra-op threads to this",
    )
    p.add_argument("--no-tf", action="store_true", help="skip the TensorFlow rows")
    p.add_argument(
        "--old",
        default=None,
        help="targets: another npcnn checkout timed as 'old' (e.g. a git worktree of a commit)",
    )
    p.add_argument("--out", default="benchmark_results", help="output folder")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    bad = [s for s in args.sections or [] if s not in [*SECTIONS, "targets"]]
    if bad:
        p.error(f"unknown sections {bad}; choose from {SECTIONS}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    from . import report
    from .suite import NoGpuError, run

    wanted = args.mode != "smoke" if args.sections is None else "targets" in args.sections
    if wanted:  # issue 12's table, old vs new
        if args.device == "cpu" and not args.no_tf:
            from .targets import run_targets

            rounds = args.rounds or (3 if args.mode != "full" else 9)
            run_targets(rounds=rounds, out=args.out, old=args.old)
        if args.sections is not None:
            args.sections = [s for s in args.sections if s != "targets"]
            if not args.sections:
                return 0

    try:
        data = run(args)
    except NoGpuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report.annotate(data)
    os.makedirs(args.out, exist_ok=True)
    data["plots"] = [] if args.no_plots else report.plots(data, args.out)
    md = report.markdown(data)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=1, default=str)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md)
    print()
    for line in report.targets(data):
        print(line)
    print(
        f"wrote {args.out}/results.json, results.md"
        + "".join(f", {os.path.basename(p)}" for p in data["plots"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
