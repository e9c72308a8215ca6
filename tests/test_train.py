"""Training loop, CLI, checkpoints and resume, on a small slice of the real MNIST.

The data come from ``NPCNN_DATA_DIR`` (CI points it at ../shared/data). Without
it these tests skip, except under CI, where a missing data folder is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from npcnn.checkpoint import load_checkpoint, save_checkpoint
from npcnn.cli import main
from npcnn.train import TrainConfig, fit, make_numpy_learner


def _data_dir():
    candidates = [os.environ.get("NPCNN_DATA_DIR"), Path(__file__).parents[2] / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return str(Path(c) / "mnist")
    if os.environ.get("CI"):
        pytest.fail("CI must provide the MNIST files through NPCNN_DATA_DIR")
    pytest.skip("real MNIST not found: set NPCNN_DATA_DIR to a folder holding mnist/")


@pytest.fixture(scope="module")
def mnist_dir():
    return _data_dir()


@pytest.fixture(scope="module")
def small_mnist(mnist_dir):
    from npcnn.data import load_mnist

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


def test_cli_train_evaluate_and_plots(mnist_dir, tmp_path, capsys):
    ckpt, plots = tmp_path / "run.npz", tmp_path / "plots"
    code = main(
        [
            "train",
            "--data-dir",
            mnist_dir,
            "--limit-train",
            "500",
            "--limit-test",
            "200",
            "--steps",
            "5",
            "--batch-size",
            "10",
            "--save",
            str(ckpt),
            "--plots",
            str(plots),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "test accuracy: " in out
    for name in [
        "training_curves.png",
        "filters_conv1.png",
        "feature_maps_conv1.png",
        "confusion.png",
    ]:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # no pickle anywhere in the checkpoint
    with np.load(ckpt, allow_pickle=False) as archive:
        assert "weight/conv1/kernel" in archive.files

    assert (
        main(["evaluate", "--weights", str(ckpt), "--data-dir", mnist_dir, "--limit-test", "200"])
        == 0
    )
    out = capsys.readouterr().out
    assert "true\\pred" in out and "test accuracy: " in out


def _tiny_checkpoint(path, **changes):
    config = TrainConfig()
    learner = make_numpy_learner(config)
    named = dict(learner.named_params())
    named.update(changes)
    save_checkpoint(path, list(named.items()), {}, None, {"step": 0})


def test_checkpoint_that_does_not_fit_names_layer_and_shapes(mnist_dir, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    _tiny_checkpoint(bad, **{"dense1/kernel": np.zeros((3136, 512), np.float32)})
    assert main(["evaluate", "--weights", str(bad), "--data-dir", mnist_dir]) == 2
    err = capsys.readouterr().err
    assert "dense1" in err and "(3136, 512)" in err and "(3136, 1024)" in err


def test_truncated_checkpoint_fails_cleanly(mnist_dir, tmp_path, capsys):
    good = tmp_path / "good.npz"
    _tiny_checkpoint(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:5000])
    assert main(["evaluate", "--weights", str(truncated), "--data-dir", mnist_dir]) == 2
    assert "not a readable npcnn checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "--weights", str(tmp_path / "missing.npz")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint intact and no temp file."""
    path = tmp_path / "ck.npz"
    _tiny_checkpoint(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        _tiny_checkpoint(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


def test_cli_kernels_ops_trains_to_the_same_weights(mnist_dir, tmp_path, capsys):
    """`npcnn train --kernels ops` runs the readable ops: same checkpoint as the fast default."""
    saved = {}
    for kernels in ("ops", "fast"):
        ckpt = tmp_path / f"{kernels}.npz"
        argv = ["train", "--data-dir", mnist_dir, "--limit-train", "300", "--limit-test", "50"]
        argv += ["--steps", "4", "--batch-size", "8", "--save", str(ckpt), "--kernels", kernels]
        assert main(argv) == 0
        with np.load(ckpt, allow_pickle=False) as archive:
            saved[kernels] = {k: archive[k] for k in archive.files if k.startswith("weight/")}
    assert saved["ops"].keys() == saved["fast"].keys()
    for name in saved["ops"]:
        np.testing.assert_array_equal(saved["ops"][name], saved["fast"][name], err_msg=name)
