"""``npcnn check``: a learner's own forward and backward passes, checked like npcnn's.

Write ``conv2d_forward``/``conv2d_backward`` (or any op of ``npcnn.ops``) in a
file of your own, with the same signatures and contract, then::

    npcnn check my_ops.py            # or, in Python: print(npcnn.check("my_ops.py"))

Hypothesis draws cases (odd sizes, strides, 'same' and 'valid', ties, zeros,
float32 and float64); each op's forward is compared with the reference and its
backward, run from *your* forward's cache, with the reference gradients, to
the rounding-error bounds of the parity tests. A failure shows the smallest
failing case and, when it matches a known mistake (``mistakes.py``), says
which in a teacher's words. ``npcnn exercise conv2d`` writes a file to start
from. The modules: ``spec`` (the ops), ``cases`` (the strategies), ``oracle``
(the reference), ``compare`` (tolerances), ``learner`` (loading and calling
your code safely), ``run`` (the search), ``mistakes`` (and their code,
``wrong``), ``report``, ``exercises``. Needs Hypothesis (``pip install npcnn[check]``).
"""

from __future__ import annotations

import secrets
import sys
import types

from .exercises import exercise_notebook, exercise_source, write_exercise
from .learner import UsageError
from .spec import OPS, op_named

__all__ = ["check", "UsageError", "OPS", "write_exercise", "exercise_source", "exercise_notebook"]


def check(
    target,
    *,
    only=None,
    against="npcnn",
    profile="default",
    seed=None,
    replay=None,
    time_limit=2.0,
    command=None,
):
    """Check the ops that ``target`` defines; returns a :class:`~npcnn.check.report.Report`.

    Args:
        target: a path to a .py file (or a .ipynb notebook), a module, or a dict of
            functions (``globals()`` in a notebook).
        only: op names to check (default: every op the file defines).
        against: 'npcnn' (npcnn.ops, the default) or 'tf' (TensorFlow's ops).
        profile: 'default' (40 cases per op) or 'thorough' (500).
        seed: the search's random seed (default: a fresh one, printed in the report).
        replay: 'OP:SEED' from a report: that op alone, with that seed.
        time_limit: seconds one case (a forward and a backward call) may take.
    Raises:
        UsageError: nothing can be checked (no such file, a file that does not
            import, no op in it, a bad argument).
    """
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise UsageError(
            "npcnn check needs Hypothesis: pip install 'npcnn[check]' (or pip install hypothesis)"
        ) from None
    from . import learner as learners
    from .report import Report
    from .run import PROFILES, check_op

    if profile not in PROFILES:
        raise UsageError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if replay is not None:
        only, seed = _replayed(replay)
    wanted = None if only is None else {op_named(name).name for name in _names(only)}
    if seed is None:
        seed = secrets.randbelow(10**6)
    reference = _oracle(against)

    code = learners.load(target)
    found = _wanted_ops(code, learners.found_ops(code), wanted)
    shown = _command_line(command, code, profile, against)
    report = Report(
        code.name, reference=_ORACLE_NAMES[against], profile=profile, seed=seed, command=shown
    )
    for spec, forward, backward in found:
        report.results.append(
            check_op(
                spec, forward, backward, reference, seed=seed, profile=profile, limit=time_limit
            )
        )
    return report


_ORACLE_NAMES = {"npcnn": "npcnn.ops", "tf": "TensorFlow"}


def _replayed(replay):
    """(the op list, the seed) of a report's 'OP:SEED'."""
    op, _, number = str(replay).partition(":")
    if not number.isdigit():
        raise UsageError(f"--replay takes OP:SEED as a report prints it, got {replay!r}")
    return [op], int(number)


def _wanted_ops(code, found, wanted):
    """The (spec, forward, backward) of ``found`` that ``wanted`` names (all if None);
    a wanted op the learner's code does not define is a usage error."""
    if wanted is None:
        return found
    missing = wanted - {spec.name for spec, _, _ in found}
    if missing:
        raise UsageError(
            f"{code.name} does not define {', '.join(sorted(missing))} "
            "(neither its _forward nor its _backward)"
        )
    return [f for f in found if f[0].name in wanted]


def _command_line(command, code, profile, against):
    """The command the report shows for running the check again ('' for code without a file)."""
    shown = command or (f"npcnn check {code.name}" if code.path else "")
    if shown and profile != "default":
        shown += f" --profile {profile}"
    if shown and against != "npcnn":
        shown += f" --against {against}"
    return shown


def _names(only):
    if isinstance(only, str):
        return [n for n in only.split(",") if n]
    return list(only)


def _oracle(against):
    from .oracle import TensorFlowMissing, numpy_reference, tensorflow_reference

    if against == "npcnn":
        return numpy_reference
    if against == "tf":
        try:
            return tensorflow_reference()
        except TensorFlowMissing as exc:
            raise UsageError(str(exc)) from None
    raise UsageError(f"against must be 'npcnn' or 'tf', got {against!r}")


class _CallableModule(types.ModuleType):
    """Lets ``npcnn.check(path)`` call :func:`check` while ``npcnn.check`` stays this package
    (so ``import npcnn.check.cases`` and ``npcnn.check.mistakes`` keep working)."""

    def __call__(self, *args, **kwargs):
        return check(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
