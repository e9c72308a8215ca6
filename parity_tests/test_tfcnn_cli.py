"""`python -m tfcnn train` runs through npcnn's loop, writes checkpoints npcnn reads,
and checks its options as npcnn's command line does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from npcnn.checkpoint import load_checkpoint
from npcnn.cli import main as npcnn_main


@pytest.mark.parametrize("mode", [[], ["--eager"]])
def test_tfcnn_train_then_npcnn_evaluate(mnist_dir, tmp_path, capsys, mode):
    from tfcnn.cli import main as tfcnn_main

    ckpt = tmp_path / "tf.npz"
    args = [
        "train",
        "--data-dir",
        mnist_dir,
        "--limit-train",
        "500",
        "--limit-test",
        "200",
        "--steps",
        "3",
        "--batch-size",
        "10",
        "--save",
        str(ckpt),
        *mode,
    ]
    assert tfcnn_main(args) == 0
    out = capsys.readouterr().out
    assert "tfcnn: training on 500 images, 3 steps of 10" in out
    tf_accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert load_checkpoint(ckpt)["meta"]["framework"] == "tfcnn"

    assert (
        npcnn_main(
            ["evaluate", "--weights", str(ckpt), "--data-dir", mnist_dir, "--limit-test", "200"]
        )
        == 0
    )
    np_accuracy = float(capsys.readouterr().out.split("test accuracy: ")[1].split()[0])
    assert np_accuracy == pytest.approx(tf_accuracy, abs=0.011)  # at most 2 of 200 flip


def test_tfcnn_resume_continues_the_optimizer(mnist_dir, tmp_path, capsys):
    from tfcnn.cli import main as tfcnn_main

    common = [
        "train",
        "--data-dir",
        mnist_dir,
        "--limit-train",
        "300",
        "--limit-test",
        "50",
        "--batch-size",
        "10",
        "--seed",
        "2",
    ]
    assert tfcnn_main([*common, "--steps", "4", "--save", str(tmp_path / "a.npz")]) == 0
    assert tfcnn_main([*common, "--steps", "2", "--save", str(tmp_path / "b.npz")]) == 0
    assert (
        tfcnn_main(
            [
                *common,
                "--steps",
                "4",
                "--save",
                str(tmp_path / "b.npz"),
                "--resume",
                str(tmp_path / "b.npz"),
            ]
        )
        == 0
    )
    a, b = load_checkpoint(tmp_path / "a.npz"), load_checkpoint(tmp_path / "b.npz")
    assert int(b["optimizer"]["iterations"]) == 4
    for name in a["weights"]:  # TF's CPU kernels may reorder sums between runs: tiny slack
        np.testing.assert_allclose(a["weights"][name], b["weights"][name], rtol=0, atol=1e-6)


def test_tfcnn_cli_validates_numbers_too(capsys):
    from tfcnn.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--batch-size", "0"])
    assert info.value.code == 2 and "--batch-size" in capsys.readouterr().err


def test_tfcnn_help_offers_only_what_tfcnn_does(capsys):
    """`tfcnn` trains; evaluating and deploying are npcnn's, and its help says so."""
    from tfcnn.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "{train}" in out and "npcnn predict --model" in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--device" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--weights", "x.npz"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'evaluate'" in capsys.readouterr().err


def test_tfcnn_trains_the_modern_network_from_npcnns_weights(mnist_dir, tmp_path, capsys):
    """`--model modern`: Keras's twin of the zoo network starts from npcnn's very weights,
    trains in training mode (its moving statistics move), on Keras's cosine schedule,
    and leaves a checkpoint of npcnn's architecture that `npcnn evaluate` reads."""
    import keras

    from npcnn.train import TrainConfig
    from npcnn.zoo import build_model
    from tfcnn.cli import TFLearner
    from tfcnn.cli import main as tfcnn_main

    config = TrainConfig(network="modern", seed=3, lr_schedule="cosine", decay_steps=5)
    learner = TFLearner(config, jit=False)
    npcnn_weights = build_model("modern", seed=3).named_weights()
    assert [name for name, _ in learner.named_params()] == [name for name, _ in npcnn_weights]
    for (name, ours), (_, theirs) in zip(learner.named_params(), npcnn_weights):
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
    schedule = learner.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert (schedule.initial_learning_rate, schedule.decay_steps) == (1e-3, 5)

    ckpt = tmp_path / "modern.npz"
    data = ["--data-dir", mnist_dir, "--limit-test", "20"]
    train = ["train", *data, "--limit-train", "40", "--steps", "2", "--batch-size", "8"]
    modern = ["--model", "modern", "--lr-schedule", "cosine", "--save", str(ckpt)]
    assert tfcnn_main([*train, *modern]) == 0
    saved = load_checkpoint(ckpt)
    assert saved["meta"]["config"]["decay_steps"] == 2
    assert saved["architecture"] == build_model("modern", seed=0).get_config()
    assert saved["weights"]["batch_normalization/moving_mean"].any()  # training=True
    capsys.readouterr()
    assert npcnn_main(["evaluate", "--weights", str(ckpt), *data]) == 0
    assert "trained by tfcnn" in capsys.readouterr().out
