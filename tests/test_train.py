"""npcnn.train: ``fit`` learns, resumes exactly, survives Ctrl-C and stops when it diverges.

The learning tests train on a small slice of the real MNIST from ``NPCNN_DATA_DIR``
(CI points it at ../shared/data) and skip without it, except under CI, where a
missing data folder is a failure. Divergence runs on a tiny fake dataset.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from npcnn.checkpoint import load_checkpoint
from npcnn.train import (
    Learner,
    NumpyLearner,
    TrainConfig,
    TrainingDiverged,
    fit,
    make_numpy_learner,
)

from .helpers import fake_dataset

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow when diverging


@pytest.fixture(scope="module")
def small_mnist(mnist_dir):
    from npcnn.datasets import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(mnist_dir)
    return (x_train[:3000], y_train[:3000]), (x_test[:500], y_test[:500])


def _quiet(*args, **kwargs):
    pass


def test_accuracy_rises_well_above_chance(small_mnist):
    config = TrainConfig(steps=40, batch_size=32, seed=1)
    result = fit(make_numpy_learner(config), small_mnist, config, log=_quiet)
    assert result["accuracy"] > 0.6  # chance is 0.1
    losses = result["history"]["loss"]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert result["confusion"].sum() == 500


def test_resume_is_exact(small_mnist, tmp_path):
    def run(steps, save, resume=None):
        config = TrainConfig(steps=steps, batch_size=16, seed=3, save=str(save), resume=resume)
        return fit(make_numpy_learner(config), small_mnist, config, log=_quiet)

    run(8, tmp_path / "straight.npz")
    run(3, tmp_path / "split.npz")
    run(8, tmp_path / "split.npz", resume=str(tmp_path / "split.npz"))
    a, b = load_checkpoint(tmp_path / "straight.npz"), load_checkpoint(tmp_path / "split.npz")
    assert a["weights"].keys() == b["weights"].keys()
    for name in a["weights"]:
        np.testing.assert_array_equal(a["weights"][name], b["weights"][name], err_msg=name)
    for name in a["optimizer"]:
        np.testing.assert_array_equal(a["optimizer"][name], b["optimizer"][name], err_msg=name)
    assert a["meta"]["history"]["loss"] == b["meta"]["history"]["loss"]
    assert a["rng"] == b["rng"]


def test_ctrl_c_saves_and_resume_matches_uninterrupted(mnist_dir, tmp_path):
    """A real Ctrl-C (SIGINT) in `python -m npcnn train`, then --resume."""
    common = [
        sys.executable,
        "-m",
        "npcnn",
        "train",
        "--data-dir",
        mnist_dir,
        "--limit-train",
        "1000",
        "--limit-test",
        "100",
        "--batch-size",
        "8",
        "--steps",
        "40",
        "--seed",
        "5",
    ]
    straight = tmp_path / "straight.npz"
    subprocess.run([*common, "--save", str(straight)], check=True, capture_output=True)

    interrupted = tmp_path / "interrupted.npz"
    proc = subprocess.Popen(
        [*common, "--save", str(interrupted)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:  # progress lines: wait until training has begun
        if "npcnn train" in line and "/40" in line:
            break
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted at step" in out
    stopped_at = load_checkpoint(interrupted)["meta"]["step"]
    assert 0 < stopped_at < 40

    subprocess.run(
        [*common, "--save", str(interrupted), "--resume", str(interrupted)],
        check=True,
        capture_output=True,
    )
    a, b = load_checkpoint(straight), load_checkpoint(interrupted)
    for name in a["weights"]:
        np.testing.assert_array_equal(a["weights"][name], b["weights"][name], err_msg=name)


# ---- divergence and the Learner protocol --------------------------------------------------


def test_fit_raises_training_diverged_a_floating_point_error(tmp_path):
    config = TrainConfig(steps=8, batch_size=4, learning_rate=1e30, limit_test=4)
    with pytest.raises(FloatingPointError, match="diverged") as info:
        fit(make_numpy_learner(config), fake_dataset(), config, log=lambda *a: None)
    assert isinstance(info.value, TrainingDiverged) and info.value.diverged_path is None


class InfWeightsLearner:
    """Finite losses, but the weights have overflowed: the checkpoint must not be written."""

    name = "inf-weights"

    def __init__(self):
        self.inner = make_numpy_learner(TrainConfig())

    def train_step(self, x, labels):
        self.inner.model.params[0][...] = np.inf
        return 1.0

    def predict(self, x, batch_size=None):
        return self.inner.predict(x, batch_size)

    def named_params(self):
        return self.inner.named_params()

    def set_weights(self, weights):
        self.inner.set_weights(weights)

    def optimizer_state(self):
        return self.inner.optimizer_state()

    def set_optimizer_state(self, state):
        self.inner.set_optimizer_state(state)


def test_checkpoint_with_inf_weights_is_refused(tmp_path):
    learner = InfWeightsLearner()
    assert isinstance(learner, Learner)
    config = TrainConfig(steps=2, batch_size=4, save=str(tmp_path / "ck.npz"))
    with pytest.raises(TrainingDiverged, match="conv1/kernel holds NaN or inf"):
        fit(learner, fake_dataset(), config, log=lambda *a: None)
    assert not (tmp_path / "ck.npz").exists()


def test_numpy_learner_is_a_learner():
    assert isinstance(make_numpy_learner(TrainConfig()), Learner)
    assert isinstance(NumpyLearner, type)
