"""npcnn.curves: a run with plots records the accuracy on a named held-out
subset along the way, so the accuracy panel is a curve."""

from __future__ import annotations

import numpy as np
import pytest

from npcnn.train import TrainConfig, evaluate, fit, make_numpy_learner


def _quiet(*args, **kwargs):
    pass


def _synthetic_data(n_train=60, n_test=30, seed=0):
    """Random 'digits': enough to drive the loop, nothing to learn."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n_train + n_test, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n_train + n_test)
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


def test_plots_get_an_accuracy_curve_on_a_named_held_out_subset(tmp_path):
    """With plots, the run records the accuracy on the first test images about
    20 times, from step 0 to the last step, and names that data."""
    config = TrainConfig(steps=7, batch_size=4, monitor_size=20, plots=str(tmp_path))
    lines, data, learner = [], _synthetic_data(), make_numpy_learner(config)
    history = fit(learner, data, config, log=lines.append)["history"]
    assert [step for step, _ in history["monitor"]] == list(range(8))  # 7 // 20 -> every step
    assert history["monitor_data"] == "the first 20 of 30 test images"
    assert history["eval_data"] == "all 30 test images"
    assert any("the first 20 of 30 test images" in line for line in lines)
    (x_test, y_test) = data[1]
    assert history["monitor"][-1][1] == evaluate(learner, x_test[:20], y_test[:20])[0]


def test_the_curve_ends_at_the_last_step_and_is_off_without_plots():
    data = _synthetic_data()
    config = TrainConfig(steps=5, batch_size=4, monitor_every=2)
    history = fit(make_numpy_learner(config), data, config, log=_quiet)["history"]
    assert [step for step, _ in history["monitor"]] == [0, 2, 4, 5]
    for config in (
        TrainConfig(steps=3, batch_size=4),
        TrainConfig(steps=3, batch_size=4, plots="p", monitor_every=0),
    ):
        history = fit(make_numpy_learner(config), data, config, log=_quiet)["history"]
        assert "monitor" not in history


@pytest.mark.parametrize("every", [-1, 1.5, True])
def test_monitor_every_must_be_a_count(every):
    config = TrainConfig(steps=1, monitor_every=every)
    with pytest.raises(ValueError, match="monitor_every"):
        fit(make_numpy_learner(TrainConfig()), _synthetic_data(), config, log=_quiet)
