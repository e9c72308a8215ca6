"""``python -m benchmarks``: time npcnn against TensorFlow, PyTorch, JAX and MyGrad.

Examples::

    python -m benchmarks --sections peers --mode smoke    # every system, under a minute
    python -m benchmarks --sections peers,targets --publish   # README/RESULTS.md tables
    python -m benchmarks --sections breakdown --old ../npcnn-other   # another checkout too
    python -m benchmarks --device gpu --sections peers,kernels       # npcnn on CuPy

Results go to one folder per machine (default ``benchmarks/results/<cpu>-<isa>-<n>cpu``),
one JSON file per section holding its latest run, with ``report.md`` and the
figure ``peers.png`` rebuilt from them all.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def machine_folder() -> str:
    """benchmarks/results/<cpu model>-<isa>-<n>cpu: one folder per machine."""
    from .machine import _cpu_model
    from .report import _isa

    slug = re.sub(r"[^a-z0-9]+", "-", f"{_cpu_model()} {_isa()}".lower()).strip("-")
    return str(ROOT / "benchmarks" / "results" / f"{slug}-{os.cpu_count()}cpu")


def parse_args(argv=None):
    from .suite import MODES, PRESETS, SECTIONS
    from .systems import FAMILY

    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--mode",
        choices=list(MODES),
        default="quick",
        help="smoke (under a minute), quick (minutes) or full (longer)",
    )
    p.add_argument(
        "--sections",
        type=_names,
        default=None,
        help=f"comma-separated: {', '.join(SECTIONS)}; or {', '.join(PRESETS)} "
        "(default: everything but levers and kernels)",
    )
    p.add_argument(
        "--systems",
        type=_names,
        default=None,
        help=f"comma-separated subset of: {', '.join(FAMILY)} (default: all but "
        "'npcnn old', which --old adds)",
    )
    p.add_argument(
        "--cores",
        choices=["all", "both"],
        default=None,
        help="both: also re-run under taskset -c 0 with one thread everywhere "
        "(default for peers, targets and a run of everything, except in smoke "
        "mode); for one core only: taskset -c 0 python -m benchmarks --threads 1",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for every framework (default: the CPUs this process may "
        "use, so taskset is respected)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="gpu: npcnn on CuPy, the peers on the card",
    )
    p.add_argument(
        "--old", default=None, help="another npcnn checkout, timed as 'npcnn old' beside this one"
    )
    p.add_argument(
        "--batch-sizes",
        type=_ints,
        default=None,
        help="batch sizes of the op and train step sections",
    )
    p.add_argument("--inference-batch-sizes", type=_ints, default=None)
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per group")
    p.add_argument("--headline-rounds", type=int, default=None)
    p.add_argument(
        "--pause",
        type=float,
        default=None,
        help="seconds between cases of two frameworks (default 0.15)",
    )
    p.add_argument("--out", default=None, help="results folder (default: one per machine)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--publish",
        action="store_true",
        help="then rewrite the tables in README.md and benchmarks/RESULTS.md",
    )
    p.add_argument("--one-core-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)  # fmt: skip
    from .suite import expand

    try:
        expand(args.sections or [])
    except ValueError as e:
        p.error(f"{e}; choose from {', '.join(SECTIONS + list(PRESETS))}")
    bad = [s for s in args.systems or [] if s not in FAMILY]
    if bad:
        p.error(f"unknown systems {bad}; choose from {', '.join(FAMILY)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    from . import report
    from .gpu import NoGpuError
    from .suite import run

    try:
        data = run(args)
    except NoGpuError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.one_core_child:  # rows for the parent process, which merges them
        import json

        with open(args.one_core_child, "w") as f:
            json.dump(data, f, default=str)
        return 0
    report.annotate(data)
    out = args.out or machine_folder()
    written = report.save(data, out)
    written += report.write(out, plots=not args.no_plots)
    print()
    for system, reason in data["missing"].items():
        print(f"{system}: no rows: {reason}")
    if any(r["section"] == "headline" for r in data["results"]):
        print("\n".join(report.peers_table(data)))
        print("\n".join(report.targets_table(data)))
    if args.publish:
        files = [str(ROOT / "README.md"), str(ROOT / "benchmarks" / "RESULTS.md")]
        changed = report.publish(out, files)
        print("published into " + (", ".join(changed) or "nothing (no marked blocks changed)"))
    print("wrote " + ", ".join(os.path.relpath(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
