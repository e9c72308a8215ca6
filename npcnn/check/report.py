"""The report of ``npcnn check``: one line per op, a summary, then each failure in full."""

from __future__ import annotations

from dataclasses import dataclass, field

from .cases import describe_value
from .spec import BY_NAME

STATUS = {"pass": "ok", "fail": "FAIL", "todo": "todo"}


@dataclass
class Report:
    """What ``npcnn.check`` returns; ``print(report)`` shows what ``npcnn check`` prints."""

    target: str  # the file as given
    results: list = field(default_factory=list)  # OpResult, one per op
    reference: str = "npcnn.ops"
    profile: str = "default"
    seed: int = 0
    command: str = ""  # how to run it again from a shell ('npcnn check FILE')

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def exit_status(self) -> int:
        return 0 if self.passed else 1

    def result(self, op: str):
        return next(r for r in self.results if r.op == op)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self):
        yield (
            f"checking {self.target} against {self.reference} "
            f"({self.profile} profile, seed {self.seed})"
        )
        width = max(len(r.op) for r in self.results)
        for r in self.results:
            yield f"  {r.op:<{width}}  {STATUS[r.status]:<4}  {_summary(r)}"
        ok = sum(r.passed for r in self.results)
        yield f"{ok} of {len(self.results)} ops pass."
        for r in self.results:
            if r.status == "fail" and r.case is not None:
                yield ""
                yield from self.failure(r)

    def failure(self, r):
        spec = BY_NAME[r.op]
        o = r.outcome
        if o.kind == "timeout":  # not shrunk: every try would run for the whole time limit
            yield f"{r.op}: the first case that ran too long:"
        else:
            yield f"{r.op}: the smallest failing case (shrunk by Hypothesis):"
        named = list(zip(spec.forward_args, r.case.args))
        if o.stage == "backward":
            named.append((spec.upstream, r.case.upstream))
        for name, value in named:
            yield f"    {name} = {describe_value(value, f'    {name} = ')}"
        yield f"  {o.stage}: {o.message}"
        for m in o.mismatches:
            if len(o.mismatches) > 1:
                yield f"    {m.message}"
            for line in m.details:
                yield f"      {line}" if len(o.mismatches) > 1 else f"    {line}"
        if o.traceback:
            yield "  where it was stopped:" if o.kind == "timeout" else "  your traceback:"
            for line in o.traceback.splitlines():
                yield f"    {line}"
        if o.printed.strip():
            printed = o.printed.strip().splitlines()
            yield "  it printed:"
            for line in printed[:5]:
                yield f"    {line}"
            if len(printed) > 5:
                yield f"    ... ({len(printed) - 5} more lines)"
        for d in r.diagnoses:
            word = "diagnosis" if d.confirmed else "probably"
            yield f"  {word} ({d.mistake.name}): {d.mistake.says}"
        if r.hint:
            yield f"  hint: {r.hint}"
        if self.command:
            yield f"  replay: {self.command} --replay {r.replay}"
        else:  # functions handed over in Python (a notebook's globals())
            yield f"  replay: npcnn.check(..., replay={r.replay!r})"


def _summary(r) -> str:
    if r.status == "pass":
        return f"{r.cases} cases" + (f" ({r.note})" if r.note else "")
    if r.status == "todo":
        return r.note
    if r.case is None:
        return r.note
    o = r.outcome
    first = o.mismatches[0].message if o.mismatches else o.message
    more = f" (+{len(o.mismatches) - 1} more)" if len(o.mismatches) > 1 else ""
    said = ""
    if r.diagnoses and r.diagnoses[0].confirmed:
        said = f"  [{r.diagnoses[0].mistake.name}]"
    return f"{o.stage}: {first}{more}{said}"
