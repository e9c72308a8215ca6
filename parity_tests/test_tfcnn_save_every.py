"""`python -m tfcnn train --save-every N`: checkpoints every N steps, and a run
that stops dead between two of them resumes to the same end.

Runs in-process on a tiny random dataset (``load_dataset`` replaced). A crash
is an exception nothing in the loop handles, raised from the learner's step:
like a kill, it leaves only what the last checkpoint holds.
"""

from __future__ import annotations

import numpy as np
import pytest

import npcnn.datasets
import npcnn.train
from npcnn.checkpoint import load_checkpoint


def fake_dataset(*args, **kwargs):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 48)
    return (images[:40], labels[:40]), (images[40:], labels[40:])


COMMON = ["train", "--batch-size", "4", "--steps", "7", "--save-every", "3", "--seed", "4"]
COMMON += ["--limit-test", "8", "--eval-batch-size", "8"]


class Crash(BaseException):
    pass


@pytest.fixture
def written(monkeypatch):
    monkeypatch.setattr(npcnn.datasets, "load_dataset", fake_dataset)
    steps, write = [], npcnn.train._Run.write  # the step of every checkpoint written

    def spy(run, *args, **kwargs):
        steps.append(run.step)
        return write(run, *args, **kwargs)

    monkeypatch.setattr(npcnn.train._Run, "write", spy)
    return steps


def test_tfcnn_save_every_then_crash_and_resume(tmp_path, written, monkeypatch, capsys):
    from tfcnn.cli import TFLearner, main

    straight, crashed = tmp_path / "straight.npz", tmp_path / "crashed.npz"
    assert main([*COMMON, "--save", str(straight)]) == 0
    assert written == [3, 6, 7, 7]  # every 3 steps, the last step, after the final evaluation
    real_step, calls = TFLearner.train_step, []

    def crash_at_5(self, x, labels):
        calls.append(1)
        if len(calls) == 5:
            raise Crash
        return real_step(self, x, labels)

    monkeypatch.setattr(TFLearner, "train_step", crash_at_5)
    with pytest.raises(Crash):
        main([*COMMON, "--save", str(crashed)])
    assert load_checkpoint(crashed)["meta"]["step"] == 3  # steps 4 and 5 are lost
    monkeypatch.setattr(TFLearner, "train_step", real_step)
    assert main([*COMMON, "--save", str(crashed), "--resume", str(crashed)]) == 0
    a, b = load_checkpoint(straight), load_checkpoint(crashed)
    assert a["meta"]["step"] == b["meta"]["step"] == 7
    assert int(b["optimizer"]["iterations"]) == 7
    assert a["rng"] == b["rng"]
    for group in ("weights", "optimizer"):
        for name in a[group]:  # TF's CPU kernels may reorder sums between runs: tiny slack
            np.testing.assert_allclose(a[group][name], b[group][name], rtol=0, atol=1e-6)
    np.testing.assert_allclose(a["meta"]["history"]["loss"], b["meta"]["history"]["loss"], 1e-5)


def test_tfcnn_help_says_what_a_kill_keeps_and_loses(capsys):
    from tfcnn.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--save-every N" in text
    assert "killed" in text and "lost are at most the N steps" in text
