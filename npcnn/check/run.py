"""The search: Hypothesis draws cases until the learner's op fails, then shrinks the case.

For every op the learner's file defines, :func:`check_op` runs
``hypothesis.find`` over that op's cases (``cases.py``) with a condition that
runs the learner's forward, compares it with the reference, runs the
learner's backward from the learner's own cache and compares the gradients.
The first failing case is shrunk to the smallest one that still fails; that
case is then run through the catalogue of known mistakes (``mistakes.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from . import compare, mistakes
from .learner import TimeLimit, copy_args, learner_traceback, quiet, signature_problem, time_limit
from .oracle import as_tuple

PROFILES = {"default": 15, "thorough": 150}  # cases drawn per variant of an op (cases.py)
SAMPLES = 16  # cases kept to confirm a diagnosis on


class NotWritten(BaseException):
    """The learner's forward raises NotImplementedError: the exercise's stub is untouched."""


@dataclass
class Outcome:
    """One case through the learner's op."""

    failed: bool = False
    stage: str = ""  # 'forward' or 'backward'
    kind: str = ""  # 'raised', 'timeout', 'contract', 'mutated' or a Mismatch kind
    message: str = ""  # one line
    mismatches: list = field(default_factory=list)
    traceback: str = ""
    out: object = None  # the learner's forward output
    grads: dict = field(default_factory=dict)  # the learner's gradients by name
    printed: str = ""

    def fail(self, stage, kind, message, **more):
        self.failed, self.stage, self.kind, self.message = True, stage, kind, message
        for k, v in more.items():
            setattr(self, k, v)
        return self


@dataclass
class Diagnosis:
    mistake: mistakes.Mistake
    confirmed: bool  # matched the learner on every sampled case, not just the failing one


@dataclass
class OpResult:
    """What ``npcnn check`` found for one op."""

    op: str
    status: str  # 'pass', 'fail', 'todo'
    cases: int = 0
    note: str = ""
    case: object = None  # the smallest failing case
    outcome: Outcome | None = None
    diagnoses: list = field(default_factory=list)
    hint: str = ""
    replay: str = ""  # OP:SEED

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def _call(fn, args, limit):
    with quiet() as printed, time_limit(limit):
        result = fn(*args)
    return result, printed.getvalue()


def evaluate(case, spec, forward, backward, reference, limit) -> Outcome:
    """Run the learner's forward (and backward) on ``case``; compare with ``reference``."""
    outcome = Outcome()
    want_out, want_grads = reference(case)
    out_bound, grad_bounds = compare.bounds(case)
    dtype = case.dtype

    args = copy_args(case.args)
    try:
        result, outcome.printed = _call(forward, args, limit)
    except NotImplementedError:
        raise NotWritten from None
    except TimeLimit as exc:
        return outcome.fail(
            "forward",
            "timeout",
            f"{spec.forward} ran longer than {limit:g} s",
            traceback=learner_traceback(exc),
        )
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - their code may raise anything
        return outcome.fail(
            "forward",
            "raised",
            f"{spec.forward} raised {type(exc).__name__}",
            traceback=learner_traceback(exc),
        )
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        return outcome.fail(
            "forward", "contract", f"{spec.forward} must return (out, cache), got {got}"
        )
    out, cache = result
    outcome.out = out
    changed = [
        i
        for i, (a, b) in enumerate(zip(case.args, args))
        if isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True)
    ]
    if changed:
        name = spec.forward_args[changed[0]]
        return outcome.fail(
            "forward",
            "mutated",
            f"{spec.forward} changed its input {name} in place; the caller's "
            f"arrays must stay as they were (work on a copy)",
        )
    mismatch = compare.compare(spec.output, out, want_out, out_bound, dtype)
    if mismatch:
        return outcome.fail("forward", mismatch.kind, mismatch.message, mismatches=[mismatch])
    if backward is None:
        return outcome

    upstream = case.upstream.copy()
    try:
        result, printed = _call(backward, (upstream, cache), limit)
        outcome.printed += printed
    except NotImplementedError:
        outcome.kind = "backward-not-written"
        return outcome
    except TimeLimit as exc:
        return outcome.fail(
            "backward",
            "timeout",
            f"{spec.backward} ran longer than {limit:g} s",
            traceback=learner_traceback(exc),
        )
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        return outcome.fail(
            "backward",
            "raised",
            f"{spec.backward} raised {type(exc).__name__}",
            traceback=learner_traceback(exc),
        )
    if len(spec.grads) == 1 and isinstance(result, (tuple, list)):
        return outcome.fail(
            "backward",
            "contract",
            f"{spec.backward} must return {spec.returns()} itself, an array, "
            f"not a {type(result).__name__}",
        )
    grads = as_tuple(result) if len(spec.grads) > 1 else (result,)
    if len(grads) != len(spec.grads):
        return outcome.fail(
            "backward",
            "contract",
            f"{spec.backward} must return {spec.returns()}, got {len(grads)} values",
        )
    outcome.grads = dict(zip(spec.grads, grads))
    if not np.array_equal(upstream, case.upstream, equal_nan=True):
        return outcome.fail(
            "backward",
            "mutated",
            f"{spec.backward} changed its input {spec.upstream} in place; "
            "the caller's arrays must stay as they were (work on a copy)",
        )
    found = [
        m
        for name, got, want, bound in zip(spec.grads, grads, want_grads, grad_bounds)
        if (m := compare.compare(name, got, want, bound, dtype))
    ]
    if found:
        return outcome.fail(
            "backward", found[0].kind, "; ".join(m.message for m in found), mismatches=found
        )
    return outcome


def settings_for(profile: str):
    from hypothesis import HealthCheck, Verbosity, settings

    return settings(
        max_examples=PROFILES[profile],
        database=None,  # nothing is written next to the learner's file
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )


def check_op(spec, forward, backward, reference, *, seed, profile="default", limit=2.0):
    """Search for a failing case of one op; an :class:`OpResult`."""
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    from .cases import variants

    result = OpResult(spec.name, "fail", replay=f"{spec.name}:{seed}")
    if forward is None:
        result.note = (
            f"{spec.backward} is there but not {spec.forward}: the backward reads "
            "the cache its forward makes, so write both"
        )
        return result
    problems = [
        signature_problem(forward, spec.forward, len(spec.forward_args), spec.forward_signature())
    ]
    if backward is not None:
        problems.append(signature_problem(backward, spec.backward, 2, spec.backward_signature()))
    problems = [p for p in problems if p]
    if problems:
        result.note = "; ".join(problems)
        return result

    samples, counted, backward_todo, first = [], [0], [False], []

    def fails(case):
        counted[0] += 1
        if len(samples) < SAMPLES:
            samples.append(case)
        outcome = evaluate(
            case, spec, forward, None if backward_todo[0] else backward, reference, limit
        )
        if outcome.kind == "backward-not-written":
            backward_todo[0] = True
        if outcome.kind == "timeout":
            raise _TimedOut(case)  # shrinking cases that each run for seconds takes too long
        if not outcome.failed:
            return False
        # Shrink towards the same kind of failure as the first one found (the forward, the
        # backward, an exception): a smaller case failing differently would hide the first.
        key = (outcome.stage, outcome.kind == "raised")
        if not first:
            first.append(key)
        return key == first[0]

    case = None
    try:
        for k, strategy in enumerate(variants(spec.name)):
            try:
                case = find(
                    strategy,
                    fails,
                    settings=settings_for(profile),
                    random=random.Random(seed * 1000 + k),
                )
                break
            except NoSuchExample:
                continue
    except NotWritten:
        result.status, result.cases = "todo", counted[0]
        result.note = f"not written yet ({spec.forward} raises NotImplementedError)"
        return result
    except _TimedOut as slow:
        case = slow.case
    if case is None:
        result.cases = counted[0]
        if backward_todo[0] or backward is None:
            result.status = "todo" if backward_todo[0] else "pass"
            result.note = (
                f"forward ok; {spec.backward} not written yet"
                if backward_todo[0]
                else f"forward only: no {spec.backward}"
            )
        else:
            result.status = "pass"
        return result
    result.cases = counted[0]
    result.case = case
    result.outcome = evaluate(
        case, spec, forward, None if backward_todo[0] else backward, reference, limit
    )
    if result.outcome.kind in ("nan", "value", "shape"):
        run_one = lambda c: evaluate(c, spec, forward, backward, reference, limit)  # noqa: E731
        result.diagnoses = diagnose(case, result.outcome, samples, run_one)
    if result.outcome.kind == "dtype":
        result.hint = (
            "NumPy makes float64 unless told otherwise: np.zeros(shape) and "
            "np.array(...) need dtype=x.dtype (or use np.zeros_like(x)); "
            "a Python float or np.float64 scalar in the math upcasts float32 too."
        )
    return result


class _TimedOut(BaseException):
    """Ends the search at the first case that runs too long (Hypothesis would shrink an
    ordinary exception, running the slow code again and again)."""

    def __init__(self, case):
        super().__init__("time limit")
        self.case = case


def _names(outcome):
    return [m.name for m in outcome.mismatches]


def _agrees(mistake, case, outcome, names) -> bool | None:
    """Does the learner's result on ``case`` equal the mistake's? None: the case cannot tell."""
    if outcome.kind in ("raised", "timeout", "contract", "mutated", "dtype", "type"):
        return None
    if mistake.stage == "backward" and outcome.failed and outcome.stage == "forward":
        return None
    mistake_result = mistakes.run(mistake, case)
    out_bound, grad_bounds = compare.bounds(case)
    if mistake.stage == "forward":
        if mistake_result is None:
            return not outcome.failed  # the mistake changes nothing here: neither may they
        return compare.same(outcome.out, mistake_result, out_bound, case.dtype)
    bounds = dict(zip(outcome.grads or {}, grad_bounds))
    for name in names:
        if name not in outcome.grads:
            return None
        if mistake_result is None or name not in mistake_result:
            wrong = any(m.name == name for m in outcome.mismatches)
            if wrong:
                return False
            continue
        if not compare.same(outcome.grads[name], mistake_result[name], bounds[name], case.dtype):
            return False
    return True


def diagnose(case, outcome, samples, run_one):
    """The known mistakes whose result equals the learner's on the failing case; a mistake
    that also equals it on every sampled case is *confirmed*."""
    names = _names(outcome)
    found, outcomes = [], {}
    for mistake in mistakes.for_op(case.op, outcome.stage):
        if mistakes.run(mistake, case) is None or not _agrees(mistake, case, outcome, names):
            continue
        for k, c in enumerate(samples):  # the learner runs on each sample once
            if k not in outcomes:
                outcomes[k] = run_one(c)
        verdicts = [_agrees(mistake, c, outcomes[k], names) for k, c in enumerate(samples)]
        found.append(Diagnosis(mistake, all(v is not False for v in verdicts)))
    confirmed = [d for d in found if d.confirmed]
    return confirmed or found
