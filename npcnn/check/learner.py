"""Loading a learner's file and calling its functions safely.

The file is read and compiled here, never written to (not even a
``__pycache__`` next to it). Its functions run on copies of the inputs, with
their printing captured, NumPy's warnings silenced and a time limit per call;
whatever they raise is caught and reported as that op's failure.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import io
import json
import os
import signal
import sys
import threading
import time
import traceback
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .spec import OPS

HERE = os.path.dirname(os.path.abspath(__file__))
NUMPY_DIR = os.path.dirname(np.__file__)
LEARNER_MODULE = "npcnn_learner"  # the module name a learner's file runs under


class UsageError(Exception):
    """Nothing can be checked (no file, a file that does not import, no op): exit status 2."""


class TimeLimit(BaseException):
    """A learner's function ran past the per-case time limit.

    A BaseException, so that the learner's own ``except Exception`` cannot swallow it.
    """


@dataclass
class Learner:
    """The learner's code: where it came from and its namespace (functions by name)."""

    name: str  # the path as given, or '<module name>'
    namespace: dict
    path: str | None = None


def _notebook_source(text: str, path) -> str:
    """The code cells of a Jupyter notebook, joined (IPython magics commented out)."""
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable Jupyter notebook ({exc})") from None
    code = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            lines = [
                ("# " + ln if ln.lstrip().startswith(("%", "!")) else ln)
                for ln in source.splitlines()
            ]
            code.append("\n".join(lines))
    return "\n\n".join(code) + "\n"


def load(target) -> Learner:
    """The learner's functions from a file path, a module or a namespace dict."""
    if isinstance(target, dict):
        return Learner("<namespace>", target)
    if isinstance(target, types.ModuleType):
        return Learner(
            f"<module {target.__name__}>", vars(target), getattr(target, "__file__", None)
        )
    if not isinstance(target, (str, os.PathLike)):
        raise UsageError(
            "check() takes a file path, a module or a dict of functions, "
            f"got {type(target).__name__}"
        )
    path = Path(target)
    if not path.exists():
        raise UsageError(f"{target}: no such file")
    if path.is_dir():
        raise UsageError(f"{target} is a directory; give the .py file with your functions")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{target}: cannot read it ({exc})") from None
    if path.suffix == ".ipynb":
        text = _notebook_source(text, target)
    try:
        code = compile(text, str(target), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"{target}, line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        shown = ""
        if exc.text:
            line = exc.text.rstrip("\n")
            caret = " " * (max(exc.offset or 1, 1) - 1 + len(line) - len(line.lstrip()))
            shown = f"\n    {line.strip()}\n    {caret[len(line) - len(line.lstrip()) :]}^"
        raise UsageError(f"{where}: {type(exc).__name__}: {exc.msg}{shown}") from None
    module = types.ModuleType(LEARNER_MODULE)
    module.__file__ = str(path)
    namespace = vars(module)
    sys.modules[LEARNER_MODULE] = module  # dataclasses and pickle look their module up there
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # as `python FILE` would: their own modules beside it import
    try:
        with quiet(), time_limit(60.0):
            exec(code, namespace)  # noqa: S102 - running the learner's file is the point
    except TimeLimit:
        raise UsageError(f"importing {target} took longer than 60 s") from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - their file may raise anything, SystemExit too
        raise UsageError(
            f"{target} does not import: it raised {type(exc).__name__}\n{learner_traceback(exc)}"
        ) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return Learner(str(target), namespace, str(path))


def found_ops(learner: Learner):
    """[(spec, forward or None, backward or None)] for every op the namespace defines."""
    found = []
    for spec in OPS:
        forward, backward = (learner.namespace.get(n) for n in (spec.forward, spec.backward))
        forward = forward if callable(forward) else None
        backward = backward if callable(backward) else None
        if forward or backward:
            found.append((spec, forward, backward))
    if not found:
        wanted = [n for op in OPS for n in (op.forward, op.backward)]
        defined = [
            k
            for k, v in learner.namespace.items()
            if inspect.isfunction(v) and not k.startswith("_")
        ]
        near = sorted(
            {m for k in defined for m in difflib.get_close_matches(k, wanted, 1, 0.75) if m != k}
        )
        hint = ""
        if near:
            close = [k for k in defined if difflib.get_close_matches(k, near, 1, 0.75)]
            hint = f"\nclose: you define {', '.join(close)}; did you mean {', '.join(near)}?"
        raise UsageError(
            f"{learner.name} defines none of the ops: name your functions like npcnn.ops's, "
            f"e.g. {OPS[0].forward_signature()} and {OPS[0].backward_signature()} "
            f"(the ops: {', '.join(op.name for op in OPS)}){hint}"
        )
    return found


def signature_problem(fn, name: str, nargs: int, expected: str):
    """A sentence if ``fn`` cannot be called with ``nargs`` positional arguments, else None."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # a builtin or a C function: just call it
    try:
        sig.bind(*range(nargs))
    except TypeError:
        return f"{name}{sig} does not take the arguments of {expected}"
    return None


@contextlib.contextmanager
def quiet():
    """Capture what the learner's code prints; silence NumPy's warnings while it runs."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield out


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`TimeLimit` in the running code after ``seconds`` (SIGALRM on the main
    thread of a Unix process; elsewhere the limit is checked when the call returns)."""
    alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    start = time.perf_counter()
    if alarm:

        def stop(signum, frame):
            raise TimeLimit

        previous = signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if time.perf_counter() - start > seconds:
        raise TimeLimit


def learner_traceback(exc: BaseException, limit: int = 6) -> str:
    """The traceback of ``exc`` through the learner's code: our frames and NumPy's left out."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith((HERE, NUMPY_DIR)) and not f.filename.startswith("<frozen")
    ]
    lines = traceback.format_list(frames[-limit:])
    if not isinstance(exc, TimeLimit):  # (a time limit is not their exception)
        lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip("\n")


@dataclass(frozen=True)
class Seeded:
    """A random generator as a case holds it: every call gets a fresh one from the seed, so
    the learner's forward and the reference draw the same numbers (a report prints it as code)."""

    seed: int

    def __repr__(self):
        return f"np.random.default_rng({self.seed})"


def _fresh(arg):
    if isinstance(arg, np.ndarray):
        return arg.copy()
    if isinstance(arg, Seeded):
        return np.random.default_rng(arg.seed)
    return arg


def copy_args(args):
    """The arguments a call gets: copies of the arrays, a fresh generator for a :class:`Seeded`."""
    return tuple(_fresh(a) for a in args)


def unchanged(before, after) -> list:
    """Indices of the array arguments that the call changed in place."""
    return [
        i
        for i, (a, b) in enumerate(zip(before, after))
        if isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True)
    ]
