"""Networks by name (``npcnn.zoo``) and ``npcnn train --model``: the modern CNN trains,
checkpoints its moving statistics, resumes, and loads as a model file."""

from __future__ import annotations

import numpy as np
import pytest

import npcnn
from npcnn.checkpoint import load_checkpoint
from npcnn.cli import main
from npcnn.zoo import MODELS, build_model

TRAIN = ["train", "--batch-size", "4", "--limit-test", "4", "--eval-batch-size", "4"]


def test_models_by_name():
    modern = build_model("modern", seed=0)
    assert modern.count_params() == npcnn.zoo.modern_cnn(seed=0).count_params() == 288_170
    assert build_model("seed", seed=0).count_params() == npcnn.seed_cnn().count_params()
    with pytest.raises(ValueError, match="modern"):
        build_model("resnet")
    assert set(MODELS) == {"seed", "modern"}


def test_train_modern_saves_moving_statistics_and_resumes(fake_data, tmp_path, capsys):
    ckpt = tmp_path / "modern.npz"
    assert main([*TRAIN, "--model", "modern", "--steps", "2", "--save", str(ckpt)]) == 0
    weights = load_checkpoint(ckpt)["weights"]
    moving = [name for name in weights if name.endswith("moving_mean")]
    assert len(moving) == 6 and any(weights[name].any() for name in moving)  # trained: moved
    assert main([*TRAIN, "--model", "modern", "--steps", "3", "--resume", str(ckpt)]) == 0
    model = npcnn.load_model(ckpt)
    assert [type(layer).__name__ for layer in model.layers][:3] == [
        "Conv2D",
        "BatchNormalization",
        "Activation",
    ]
    x = np.zeros((2, 28, 28, 1), dtype=np.float32)
    assert model.predict(x).shape == (2, 10)
    err = capsys.readouterr().err
    assert main([*TRAIN, "--steps", "3", "--resume", str(ckpt)]) != 0  # the tutorial's != it
    assert "another model" in capsys.readouterr().err + err


def test_a_resumed_modern_run_ends_as_an_uninterrupted_one(fake_data, tmp_path):
    """Dropout's generators are checkpointed: the masks after a resume are the
    uninterrupted run's, so the weights end bit for bit the same."""
    full, half = tmp_path / "full.npz", tmp_path / "half.npz"
    assert main([*TRAIN, "--model", "modern", "--steps", "4", "--save", str(full)]) == 0
    assert main([*TRAIN, "--model", "modern", "--steps", "2", "--save", str(half)]) == 0
    resume = ["--steps", "4", "--save", str(half), "--resume", str(half)]
    assert main([*TRAIN, "--model", "modern", *resume]) == 0
    a, b = load_checkpoint(full)["weights"], load_checkpoint(half)["weights"]
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_generator_states_are_checked_before_any_is_set():
    from npcnn.more_layers import generator_states, set_generator_states

    model = build_model("modern", seed=0)
    dropout = next(layer for layer in model.layers if type(layer).__name__ == "Dropout")
    saved = generator_states(model.layers)
    before = dropout.rng.random()
    with pytest.raises(ValueError, match="not this model's"):
        set_generator_states(model.layers, {**saved, "generator/other": saved[next(iter(saved))]})
    assert set_generator_states(model.layers, {**saved, "iterations": 3}) == {"iterations": 3}
    assert dropout.rng.random() == before  # back where the saved state was
