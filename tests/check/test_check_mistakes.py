"""npcnn check on learners' files: the reference written out passes, every known mistake
fails with its diagnosis.

The learner's files are ``learners/good.py`` (every op, loops, standalone) and
copies of it with one mistake made (``learner_mistakes.py``), written to a
temporary folder: standalone files, as a learner writes them, not patches of npcnn.
"""

from __future__ import annotations

import hashlib

import pytest
from learner_mistakes import GOOD, MISTAKEN, mistaken_source

import npcnn
from npcnn.check.mistakes import MISTAKES
from npcnn.check.spec import OPS


def test_the_reference_written_out_by_a_learner_passes():
    before = hashlib.sha256(GOOD.read_bytes()).hexdigest()
    report = npcnn.check(str(GOOD), seed=0)
    assert [r.op for r in report.results] == [op.name for op in OPS]
    assert report.passed and report.exit_status == 0, str(report)
    assert all(r.cases >= 20 for r in report.results), str(report)
    assert hashlib.sha256(GOOD.read_bytes()).hexdigest() == before  # never changed
    assert not (GOOD.parent / "__pycache__").exists()  # nothing written next to it
    assert f"{len(OPS)} of {len(OPS)} ops pass." in str(report)


@pytest.mark.parametrize("tier", ["ops", "fast"])
def test_npcnn_itself_passes_as_a_module(tier):
    """The fast tier sums in other orders than the reference: the bounds must allow it."""
    report = npcnn.check(getattr(npcnn, tier), seed=1)
    # npcnn names the inference-mode batch norm batchnorm_inference, not *_forward/*_backward
    expected = [op.name for op in OPS if op.name != "batchnorm_inference"]
    assert [r.op for r in report.results] == expected and report.passed, str(report)


def test_every_catalogue_mistake_has_a_learner_file():
    assert len(MISTAKES) >= 10
    assert set(MISTAKEN) == {m.name for m in MISTAKES}
    assert len({m.name for m in MISTAKES}) == len(MISTAKES)
    for m in MISTAKES:
        assert m.says.endswith(".") and len(m.says) > 30, m.name


@pytest.mark.parametrize("name", sorted(MISTAKEN))
def test_each_mistake_fails_with_its_diagnosis(name, tmp_path):
    op = MISTAKEN[name][0]
    path = tmp_path / f"my_{op}.py"
    path.write_text(mistaken_source(name), encoding="utf-8")
    report = npcnn.check(str(path), only=[op], seed=0)
    result = report.result(op)
    assert result.status == "fail" and report.exit_status == 1, str(report)
    confirmed = [d.mistake.name for d in result.diagnoses if d.confirmed]
    assert name in confirmed, str(report)
    assert len(confirmed) <= 2, str(report)  # a diagnosis names the mistake, not a list
    text = str(report)
    mistake = next(m for m in MISTAKES if m.name == name)
    assert f"diagnosis ({name}): {mistake.says}" in text
    assert f"--replay {op}:0" in text


def test_moving_averages_moved_at_inference_into_new_arrays_are_named(tmp_path):
    """The same mistake without a change in place: the output is normalized with moved averages."""
    path = tmp_path / "my_batchnorm_inference.py"
    path.write_text(
        mistaken_source("batchnorm-inference-updates-moving-averages")
        .replace(
            "    moving_mean *= 0.99\n    moving_mean += ",
            "    moving_mean = 0.99 * moving_mean + ",
        )
        .replace(
            "    moving_var *= 0.99\n    moving_var += ", "    moving_var = 0.99 * moving_var + "
        ),
        encoding="utf-8",
    )
    report = npcnn.check(str(path), only=["batchnorm_inference"], seed=0)
    result = report.result("batchnorm_inference")
    assert result.outcome.kind == "value", str(report)
    confirmed = [d.mistake.name for d in result.diagnoses if d.confirmed]
    assert confirmed == ["batchnorm-inference-updates-moving-averages"], str(report)
