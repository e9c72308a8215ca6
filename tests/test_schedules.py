"""Learning-rate schedules (``npcnn.schedules``), the optimizers that take them, and
``npcnn train --lr-schedule``. Keras's own CosineDecay is compared in
parity_tests/test_optimizer_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

import npcnn
from npcnn.checkpoint import load_checkpoint
from npcnn.cli import main
from npcnn.schedules import CosineDecay, learning_rate_schedule
from npcnn.train import TrainConfig, check_config

TRAIN = ["train", "--batch-size", "4", "--limit-test", "4", "--eval-batch-size", "4"]


def test_cosine_decay_from_the_rate_to_its_floor():
    schedule = CosineDecay(0.1, 10, alpha=0.2)
    assert schedule(0) == np.float32(0.1)
    assert schedule(5) == pytest.approx(0.1 * (0.2 + 0.8 * 0.5), rel=1e-6)  # halfway down
    assert schedule(10) == schedule(11) == pytest.approx(0.02, rel=1e-6)  # held at alpha * lr
    rates = [schedule(step) for step in range(11)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert schedule(3).dtype == np.float32  # as Keras computes it


@pytest.mark.parametrize(
    "args, match",
    [
        ((0.0, 10), "initial_learning_rate"),
        ((float("nan"), 10), "initial_learning_rate"),
        ((0.1, 0), "decay_steps"),
        ((0.1, 2.5), "decay_steps"),
        ((0.1, 10, 1.5), "alpha"),
    ],
)
def test_cosine_decay_refuses_bad_settings(args, match):
    with pytest.raises(ValueError, match=match):
        CosineDecay(*args)


def test_learning_rate_schedule_by_name():
    assert learning_rate_schedule("constant", 0.01) == 0.01
    cosine = learning_rate_schedule("cosine", 0.01, 50)
    assert (cosine.initial_learning_rate, cosine.decay_steps, cosine.alpha) == (0.01, 50, 0.0)
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        learning_rate_schedule("linear", 0.01, 50)
    with pytest.raises(ValueError, match="needs decay_steps"):
        learning_rate_schedule("cosine", 0.01)


@pytest.mark.parametrize("make", [npcnn.SGD, npcnn.RMSprop, npcnn.Adam])
def test_an_optimizer_takes_each_step_at_the_scheduled_rate(make):
    """Update k (0, 1, ...) uses schedule(k): the same as a constant-rate optimizer
    given that rate for that one step (its moments carried over)."""
    schedule = CosineDecay(0.1, 3, alpha=0.25)
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((2, 3)) for _ in range(5)]
    scheduled, stepped = make(schedule), make(0.1)
    p, q = np.ones((2, 3)), np.ones((2, 3))
    for k, g in enumerate(grads):
        scheduled.apply_gradients([(g, p)])
        stepped.learning_rate = float(schedule(k))
        stepped.apply_gradients([(g, q)])
        np.testing.assert_array_equal(p, q, err_msg=f"update {k}")


def test_an_optimizer_refuses_a_bad_rate():
    for bad in (0.0, -1.0, "0.1", None):
        with pytest.raises(ValueError, match="learning_rate"):
            npcnn.Adam(bad)


def test_train_config_checks_the_schedule():
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        check_config(TrainConfig(lr_schedule="step"))
    with pytest.raises(ValueError, match="decay_steps"):
        check_config(TrainConfig(lr_schedule="cosine", decay_steps=0))


def test_train_lr_schedule_cosine_decays_over_the_run(fake_data, tmp_path):
    """The schedule spans the run (decay_steps = the steps asked for, recorded in the
    checkpoint); its first step is the constant rate's, the next ones are smaller."""
    runs = {}
    for schedule in ("cosine", "constant"):
        for steps in (1, 3):
            ckpt = tmp_path / f"{schedule}{steps}.npz"
            argv = [*TRAIN, "--steps", str(steps), "--lr-schedule", schedule, "--save", str(ckpt)]
            assert main(argv) == 0
            runs[schedule, steps] = load_checkpoint(ckpt)
    config = runs["cosine", 3]["meta"]["config"]
    assert (config["lr_schedule"], config["decay_steps"]) == ("cosine", 3)
    assert runs["constant", 3]["meta"]["config"]["decay_steps"] is None
    for steps, same in ((1, True), (3, False)):
        cosine, constant = runs["cosine", steps]["weights"], runs["constant", steps]["weights"]
        assert all(np.array_equal(cosine[k], constant[k]) for k in cosine) == same, steps
    with pytest.raises(SystemExit):
        main([*TRAIN, "--steps", "1", "--lr-schedule", "linear"])
