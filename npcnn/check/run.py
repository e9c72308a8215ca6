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
    changed: str = ""  # the input the learner changed in place ('mutated')

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


class _Failed(Exception):
    """A guarded call of the learner's code went wrong: ``outcome`` says how."""

    def __init__(self, outcome):
        super().__init__(outcome.message)
        self.outcome = outcome


def _guarded(outcome, stage, name, fn, args, limit):
    """``fn(*args)`` with the learner's prints captured into ``outcome.printed``; a
    timeout or any exception becomes ``outcome`` failed at ``stage`` (raised as
    :class:`_Failed`). NotImplementedError passes through: the stub is untouched."""
    try:
        result, printed = _call(fn, args, limit)
    except NotImplementedError:
        raise
    except TimeLimit as exc:
        failed = outcome.fail(
            stage,
            "timeout",
            f"{name} ran longer than {limit:g} s",
            traceback=learner_traceback(exc),
        )
        raise _Failed(failed) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - their code may raise anything
        failed = outcome.fail(
            stage, "raised", f"{name} raised {type(exc).__name__}", traceback=learner_traceback(exc)
        )
        raise _Failed(failed) from None
    outcome.printed += printed
    return result


def _changed_input(before, after):
    """The index of the first array argument the learner changed in place, or None."""
    for i, (a, b) in enumerate(zip(before, after)):
        if isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
            return i
    return None


def _forward(outcome, case, spec, forward, want_out, limit):
    """The learner's forward on ``case``, checked; returns its cache (raises :class:`_Failed`)."""
    args = copy_args(case.args)
    try:
        result = _guarded(outcome, "forward", spec.forward, forward, args, limit)
    except NotImplementedError:
        raise NotWritten from None
    if not (isinstance(result, tuple) and len(result) == len(spec.forward_returns)):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        message = f"{spec.forward} must return ({', '.join(spec.forward_returns)}), got {got}"
        raise _Failed(outcome.fail("forward", "contract", message))
    out, cache = result[:2]
    outcome.out = out
    changed = _changed_input(case.args, args)
    if changed is not None:
        name = spec.forward_args[changed]
        message = (
            f"{spec.forward} changed its input {name} in place; the "
            "caller's arrays must stay as they were (work on a copy)"
        )
        raise _Failed(outcome.fail("forward", "mutated", message, changed=name))
    mismatch = compare.compare(spec.output, out, want_out, compare.bounds(case)[0], case.dtype)
    if mismatch:
        raise _Failed(
            outcome.fail("forward", mismatch.kind, mismatch.message, mismatches=[mismatch])
        )
    return cache


def _gradients(outcome, spec, result):
    """The learner's backward result as a tuple of gradients (raises :class:`_Failed`)."""
    if len(spec.grads) == 1 and isinstance(result, (tuple, list)):
        message = (
            f"{spec.backward} must return {spec.returns()} itself, an array, "
            f"not a {type(result).__name__}"
        )
        raise _Failed(outcome.fail("backward", "contract", message))
    grads = as_tuple(result) if len(spec.grads) > 1 else (result,)
    if len(grads) != len(spec.grads):
        message = f"{spec.backward} must return {spec.returns()}, got {len(grads)} values"
        raise _Failed(outcome.fail("backward", "contract", message))
    return grads


def _backward(outcome, case, spec, backward, cache, want_grads, limit):
    """The learner's backward from its own cache, checked (raises :class:`_Failed`)."""
    upstream = case.upstream.copy()
    try:
        result = _guarded(outcome, "backward", spec.backward, backward, (upstream, cache), limit)
    except NotImplementedError:
        outcome.kind = "backward-not-written"
        return
    grads = _gradients(outcome, spec, result)
    outcome.grads = dict(zip(spec.grads, grads))
    if not np.array_equal(upstream, case.upstream, equal_nan=True):
        message = (
            f"{spec.backward} changed its input {spec.upstream} in place; "
            "the caller's arrays must stay as they were (work on a copy)"
        )
        raise _Failed(outcome.fail("backward", "mutated", message, changed=spec.upstream))
    bounds = compare.bounds(case)[1]
    found = [
        m
        for name, got, want, bound in zip(spec.grads, grads, want_grads, bounds)
        if (m := compare.compare(name, got, want, bound, case.dtype))
    ]
    if found:
        message = "; ".join(m.message for m in found)
        raise _Failed(outcome.fail("backward", found[0].kind, message, mismatches=found))


def evaluate(case, spec, forward, backward, reference, limit) -> Outcome:
    """Run the learner's forward (and backward) on ``case``; compare with ``reference``."""
    outcome = Outcome()
    want_out, want_grads = reference(case)
    try:
        cache = _forward(outcome, case, spec, forward, want_out, limit)
        if backward is not None:
            _backward(outcome, case, spec, backward, cache, want_grads, limit)
    except _Failed as failed:
        return failed.outcome
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
    result = OpResult(spec.name, "fail", replay=f"{spec.name}:{seed}")
    result.note = _contract_problems(spec, forward, backward)
    if result.note:
        return result
    search = _Search(spec, forward, backward, reference, limit)
    try:
        case = search.find(seed, profile)
    except NotWritten:
        result.status, result.cases = "todo", search.counted
        result.note = f"not written yet ({spec.forward} raises NotImplementedError)"
        return result
    result.cases = search.counted
    if case is None:
        return _without_failure(result, spec, backward, search.backward_todo)
    return _with_failure(result, case, search)


def _contract_problems(spec, forward, backward) -> str:
    """Why the learner's functions cannot be checked at all ('' when they can)."""
    if forward is None:
        return (
            f"{spec.backward} is there but not {spec.forward}: the backward reads "
            "the cache its forward makes, so write both"
        )
    problems = [
        signature_problem(forward, spec.forward, len(spec.forward_args), spec.forward_signature())
    ]
    if backward is not None:
        problems.append(signature_problem(backward, spec.backward, 2, spec.backward_signature()))
    return "; ".join(p for p in problems if p)


class _Search:
    """Hypothesis's search for the smallest case on which the learner's op fails."""

    def __init__(self, spec, forward, backward, reference, limit):
        self.spec, self.forward, self.backward = spec, forward, backward
        self.reference, self.limit = reference, limit
        self.samples, self.counted, self.backward_todo, self.first = [], 0, False, None

    def evaluate(self, case, backward=True) -> Outcome:
        """The learner's op on ``case`` (its backward too, while it is written)."""
        use = self.backward if backward and not self.backward_todo else None
        return evaluate(case, self.spec, self.forward, use, self.reference, self.limit)

    def fails(self, case) -> bool:
        """Hypothesis's condition: does the learner's op fail on ``case`` the way it first did?"""
        self.counted += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(case)
        outcome = self.evaluate(case)
        if outcome.kind == "backward-not-written":
            self.backward_todo = True
        if outcome.kind == "timeout":
            raise _TimedOut(case)  # shrinking cases that each run for seconds takes too long
        if not outcome.failed:
            return False
        # Shrink towards the same kind of failure as the first one found (the forward, the
        # backward, an exception): a smaller case failing differently would hide the first.
        key = (outcome.stage, outcome.kind == "raised")
        self.first = self.first or key
        return key == self.first

    def find(self, seed, profile):
        """The smallest failing case of the first variant that has one, or None."""
        from hypothesis import find
        from hypothesis.errors import NoSuchExample

        from .cases import variants

        try:
            for k, strategy in enumerate(variants(self.spec.name)):
                try:
                    rng = random.Random(seed * 1000 + k)
                    return find(strategy, self.fails, settings=settings_for(profile), random=rng)
                except NoSuchExample:
                    continue
        except _TimedOut as slow:
            return slow.case
        return None


def _without_failure(result, spec, backward, backward_todo):
    """The result of a search that found no failing case."""
    if backward_todo:
        result.status, result.note = "todo", f"forward ok; {spec.backward} not written yet"
    else:
        result.status = "pass"
        if backward is None:
            result.note = f"forward only: no {spec.backward}"
    return result


def _with_failure(result, case, search):
    """The result of a search that found ``case``: its outcome, diagnoses and hint."""
    result.case = case
    result.outcome = search.evaluate(case)
    if result.outcome.kind in ("nan", "value", "shape"):
        run_one = lambda c: evaluate(  # noqa: E731
            c, search.spec, search.forward, search.backward, search.reference, search.limit
        )
        result.diagnoses = diagnose(case, result.outcome, search.samples, run_one)
    if result.outcome.kind == "mutated":  # a mistake that is a change in place, by its name
        changed, found = result.outcome.changed, mistakes.for_op(case.op, result.outcome.stage)
        result.diagnoses = [Diagnosis(m, True) for m in found if changed in m.mutates]
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
