"""``npcnn check --against tf``: a learner's ops checked against TensorFlow's own ops.

The learner's files are those of ``tests/check`` (the reference written out as
a learner would, and a copy with the max-pool tie mistake made in it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

import npcnn  # noqa: E402

GOOD = Path(__file__).resolve().parents[1] / "tests" / "check" / "learners" / "good.py"


def test_the_reference_written_out_passes_against_tensorflow():
    report = npcnn.check(
        str(GOOD),
        against="tf",
        seed=0,
        only=[
            "relu",
            "conv2d",
            "maxpool2d",
            "sparse_categorical_crossentropy",
            "batchnorm_inference",
            "dropout",
            "avgpool2d",
            "global_avgpool2d",
            "leaky_relu",
            "sigmoid",
            "tanh",
        ],
    )
    assert report.passed, str(report)
    assert "against TensorFlow" in str(report)


def test_a_mistake_is_diagnosed_against_tensorflow(tmp_path):
    text = GOOD.read_text(encoding="utf-8")
    old = "                    a, b = np.unravel_index(np.argmax(window), window.shape)\n"
    new = (
        "                    last = window.size - 1 - np.argmax(window.ravel()[::-1])\n"
        "                    a, b = np.unravel_index(last, window.shape)\n"
    )
    assert text.count(old) == 1
    path = tmp_path / "mine.py"
    path.write_text(text.replace(old, new), encoding="utf-8")
    report = npcnn.check(str(path), against="tf", seed=0, only=["maxpool2d"])
    assert report.exit_status == 1
    assert "diagnosis (maxpool2d-grad-to-last-max)" in str(report)
    assert "--against tf --replay maxpool2d:0" in str(report)
