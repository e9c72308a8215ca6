"""``python -m benchmarks``: npcnn against TF, PyTorch, JAX, MyGrad, each in its own process.

Examples::

    python -m benchmarks --mode smoke --sections matmul,headline   # under a minute
    python -m benchmarks --mode quick --sections matmul,headline --cores both
    python -m benchmarks --systems npcnn,tf-function,torch-eager --sections headline
    python -m benchmarks --mode quick --sections targets --cores all,one,busy --repeat 3 --publish
    python -m benchmarks --old ../npcnn-other --systems npcnn --sections headline
    python -m benchmarks --device gpu --sections matmul,headline,kernels   # npcnn on CuPy

Results go to one folder per machine type (``benchmarks/results/<cpu>-<vector
width>-<n>cpu``), one JSON file per section holding its latest run, with
``report.md`` and the figure ``peers.png`` rebuilt from them all. ``--publish``
then rewrites the tables and the figure links of README.md, benchmarks/RESULTS.md
and the guide's chapter 14, and refuses when the machine was busy (the 1-minute
load average above 0.5 before the run, or the matmul peak moving more than 10%
between the start and the end); ``--force`` publishes anyway and says so.
``--repeat N`` runs everything N times back to back: the ratios move from run to
run on a shared machine, and each target is then judged on the median of the
runs, every run's value written beside it; a run during which the matmul peak
moved is left out (and named in the machine block), the others still count.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
import tempfile
from pathlib import Path

from npcnn.validation import COUNT  # the CLI's positive-integer argument type

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = [ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md",
             ROOT / "docs" / "14-making-it-fast.md"]  # fmt: skip
REFUSED = 3  # the exit status of a --publish that a busy machine refused


def _ints(text):
    return [int(t) for t in text.split(",") if t.strip()]


def _names(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _cores(text):
    cores = [c for n in _names(text) for c in (["all", "one"] if n == "both" else [n])]
    bad = [c for c in cores if c not in ("all", "one", "busy")]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown core setting {bad}; choose all, one, busy, both")
    return list(dict.fromkeys(cores))


def what_to_run(p) -> None:
    """The options that choose what is timed, on which systems and cores."""
    from .suite import MODES, PRESETS, SECTIONS
    from .systems import SYSTEMS

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
        "(default: all but kernels)",
    )
    p.add_argument(
        "--systems",
        type=_names,
        default=None,
        help=f"comma-separated subset of: {', '.join(SYSTEMS)}, or module:factory "
        "(default: all but npcnn-old, which --old adds, and numpy)",
    )
    p.add_argument(
        "--cores",
        type=_cores,
        default=["all"],
        help="comma-separated: all (every CPU this process may use), one (each "
        "worker under taskset -c 0 with one thread), busy (all cores with a "
        "CPU-burning process on one: the step), both (all,one); default all",
    )
    p.add_argument("--threads", type=int, help="threads on all cores (default: the CPUs)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="gpu: on CuPy")
    p.add_argument("--old", help="another npcnn checkout, timed as npcnn-old")
    p.add_argument("--batch-sizes", type=_ints, help="of the op and train step sections")
    p.add_argument("--inference-batch-sizes", type=_ints, help="of the inference section")


def how_to_run(p) -> None:
    """The options of the stopwatch and of the results."""
    p.add_argument("--rounds", type=int, help="interleaved rounds per group")
    p.add_argument("--headline-rounds", type=int)
    p.add_argument("--pause", type=float, help="seconds between two systems (default 0.15)")
    p.add_argument("--settle", type=int, choices=range(0, 10), metavar="N",
                   help="untimed calls before each timed block (default 1; smoke: 0)")  # fmt: skip
    p.add_argument("--timeout", type=float, help="seconds an answer may take; then: hung")
    p.add_argument("--repeat", type=COUNT, default=1, metavar="N",
                   help="run everything N times back to back: the tables show the last kept "
                   "run, each target the median of the runs kept (default 1)")  # fmt: skip
    p.add_argument("--out", help="results folder (default: one per machine type)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--publish", action="store_true", help="rewrite README, RESULTS.md, ch. 14")
    p.add_argument("--force", action="store_true", help="publish even from a busy machine")


def parse_args(argv=None):
    from .suite import PRESETS, SECTIONS, expand
    from .systems import SYSTEMS, is_plugin

    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what_to_run(p)
    how_to_run(p)
    args = p.parse_args(argv)
    try:
        expand(args.sections or [])
    except ValueError as e:
        p.error(f"{e}; choose from {', '.join(SECTIONS + list(PRESETS))}")
    bad = [s for s in args.systems or [] if s not in SYSTEMS and not is_plugin(s)]
    if bad:
        p.error(f"unknown systems {bad}; choose from {', '.join(SYSTEMS)}")
    if args.publish and args.device == "gpu":
        p.error("--publish writes the CPU tables; a GPU run's results stay in its folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.command = "python -m benchmarks " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    from . import machine, report
    from .suite import run

    if args.device == "gpu" and importlib.util.find_spec("cupy") is None:
        print("error: --device gpu needs CuPy (pip install 'npcnn[gpu]', i.e. cupy-cuda12x)",
              file=sys.stderr)  # fmt: skip
        return 2

    if args.publish and not args.force:
        before = machine.busy_reasons({"load_average_at_start": machine.load_average()})
        if before:
            print(f"refusing to publish: {before[0]}; wait for a quiet machine, or --force",
                  file=sys.stderr)  # fmt: skip
            return REFUSED
    runs = []
    for k in range(args.repeat):
        if args.repeat > 1:
            print(f"=== run {k + 1} of {args.repeat}")
        runs.append(run(args))
    kept, left_out, busy = sort_runs(runs)
    data = kept[-1]
    if len(runs) > 1:  # each kept run's target values; the targets table takes their medians
        data["machine"]["load_average_at_start"] = runs[0]["machine"]["load_average_at_start"]
        data["machine"]["left_out"] = left_out
        data["target_runs"] = [
            {row_id: value for _, row_id, _, value, _ in report.target_values(one)} for one in kept
        ]
    refused = args.publish and busy and not args.force
    if args.publish and busy and args.force:
        data["machine"]["forced"] = busy
    report.annotate(data)
    folder = machine.folder_name() + ("-gpu" if args.device == "gpu" else "")
    out = args.out or str(ROOT / "benchmarks" / "results" / folder)
    if refused:  # the published folder keeps its figures; this run's go elsewhere
        out = tempfile.mkdtemp(prefix="npcnn-benchmarks-refused-")
    plots = args.publish or not args.no_plots  # what is published links the figure
    written = report.save(data, out) + report.write(out, plots=plots)
    print()
    for system, reason in data["missing"].items():
        print(f"{system}: no rows: {reason}")
    if any(r["section"] == "headline" for r in data["results"]):
        print("\n".join(report.peers_table(data)))
        print("\n".join(report.targets_table(data)))
    print("wrote " + ", ".join(os.path.relpath(p) for p in written))
    if refused:
        print(f"refusing to publish: {'; '.join(busy)}; --force publishes anyway",
              file=sys.stderr)  # fmt: skip
        return REFUSED
    if args.publish:
        changed = report.publish(out, [str(p) for p in PUBLISHED if p.exists()])
        print("published into " + (", ".join(changed) or "nothing (no marked blocks changed)"))
    return 0


def sort_runs(runs):
    """(the runs to report, the runs left out and why, why the machine was too busy to
    publish from). One run: itself, and every reason (the load before it, its matmul
    peak moving). Repeated runs: the load before the first counts (a finished run
    loads the machine for the next); a run during which the matmul peak moved is
    left out of the tables and the medians, and said so; none left: too busy."""
    from . import machine

    if len(runs) == 1:
        return runs, [], machine.busy_reasons(runs[0]["machine"])
    first = {"load_average_at_start": runs[0]["machine"].get("load_average_at_start")}
    busy, kept, left_out = machine.busy_reasons(first), [], []
    for k, one in enumerate(runs, 1):
        info = {key: one["machine"].get(key) for key in ("peak_start_gflops", "peak_end_gflops")}
        why = machine.busy_reasons(info)
        if why:
            left_out.append(f"run {k} of {len(runs)}: {why[0]}")
        else:
            kept.append(one)
    if not kept:
        return runs, [], busy + left_out
    return kept, left_out, busy


if __name__ == "__main__":
    sys.exit(main())
