"""``npcnn train`` and ``npcnn evaluate``: every expected failure is one line and an exit status.

Nothing is lost (a diverged run never overwrites a good checkpoint; a refused run
leaves every file as it was) and nothing is silent (a bad number or path is refused
by name before any work). Most runs use a tiny fake dataset (``load_dataset`` is
replaced); the fuzzed runs draw options, paths and checkpoints at random but
derandomized, so they stay a few seconds; a few runs train on real MNIST.
"""

from __future__ import annotations

import errno
import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import npcnn.datasets
from npcnn.checkpoint import load_checkpoint, save_checkpoint
from npcnn.cli import EXIT_DIVERGED, EXIT_ERROR, build_parser, main
from npcnn.train import DIVERGED_SUFFIX

from .helpers import fake_dataset, fuzz, seed_cnn_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow when diverging


TRAIN = ["train", "--batch-size", "4", "--limit-test", "4", "--eval-batch-size", "4"]
HUGE_LR = ["--learning-rate", "1e30"]


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("npcnn: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---- divergence ----------------------------------------------------------------------------
def test_diverged_run_keeps_the_good_checkpoint_it_resumed_from(fake_data, tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    assert main([*TRAIN, "--steps", "2", "--save", str(ckpt)]) == 0
    good = ckpt.read_bytes()
    capsys.readouterr()
    code = main([*TRAIN, *HUGE_LR, "--steps", "8", "--save", str(ckpt), "--resume", str(ckpt)])
    assert code == EXIT_DIVERGED
    line = one_error_line(capsys.readouterr().err)
    assert "diverged" in line and f"{ckpt} keeps the last good checkpoint" in line
    assert ckpt.read_bytes() == good  # not the diverged weights
    aside = load_checkpoint(str(ckpt) + DIVERGED_SUFFIX)
    assert aside["meta"]["diverged"] is True and aside["meta"]["step"] > 2


def test_diverged_fresh_run_writes_nothing_under_the_real_name(fake_data, tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    assert main([*TRAIN, *HUGE_LR, "--steps", "8", "--save", str(ckpt)]) == EXIT_DIVERGED
    assert "nothing was saved to" in one_error_line(capsys.readouterr().err)
    assert not ckpt.exists()
    assert (tmp_path / ("run.npz" + DIVERGED_SUFFIX)).exists()


# ---- numbers, paths and checkpoints checked before any work ------------------------------
BAD_NUMBERS = [
    ("--batch-size", "0"),
    ("--batch-size", "2.5"),
    ("--steps", "-1"),
    ("--steps", "0"),
    ("--epochs", "-3"),
    ("--learning-rate", "-1"),
    ("--learning-rate", "0"),
    ("--learning-rate", "nan"),
    ("--learning-rate", "inf"),
    ("--limit-test", "0"),
    ("--limit-train", "0"),
    ("--eval-batch-size", "0"),
    ("--seed", "-1"),
    ("--seed", "x"),
]


@pytest.mark.parametrize(("option", "value"), BAD_NUMBERS)
def test_cli_refuses_bad_numbers_before_any_work(fake_data, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", option, value])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err
    assert fake_data == []  # no data loaded


@pytest.mark.parametrize("where", ["directory", "under-a-file", "read-only"])
def test_cli_checks_save_destination_before_training(fake_data, tmp_path, capsys, where):
    if where == "directory":
        save = tmp_path
    elif where == "under-a-file":
        (tmp_path / "file").write_text("x")
        save = tmp_path / "file" / "sub" / "ck.npz"
    else:
        if os.geteuid() == 0:
            pytest.skip("root may write into a read-only directory")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        save = ro / "ck.npz"
    assert main([*TRAIN, "--steps", "1", "--save", str(save)]) == EXIT_ERROR
    assert "--save" in one_error_line(capsys.readouterr().err)
    assert fake_data == []  # refused before loading data, let alone training


def test_cli_reports_os_errors_in_one_line(fake_data, tmp_path, capsys, monkeypatch):
    import npcnn.train

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(npcnn.train, "save_checkpoint", disk_full)
    assert main([*TRAIN, "--steps", "1", "--save", str(tmp_path / "ck.npz")]) == EXIT_ERROR
    assert "No space left on device" in one_error_line(capsys.readouterr().err)


def test_cli_reports_missing_resume_file_before_loading_data(fake_data, tmp_path, capsys):
    assert main([*TRAIN, "--resume", str(tmp_path / "nope.npz")]) == EXIT_ERROR
    assert "--resume" in one_error_line(capsys.readouterr().err)
    assert fake_data == []


def test_resuming_a_weights_only_checkpoint_is_one_line(fake_data, tmp_path, capsys):

    path = tmp_path / "weights.npz"
    seed_cnn_checkpoint(path)  # weights only: no optimizer state, no history
    assert main([*TRAIN, "--steps", "1", "--resume", str(path)]) == EXIT_ERROR
    assert "cannot be resumed" in one_error_line(capsys.readouterr().err)


# ---- train, evaluate, plots ---------------------------------------------------------------


def test_cli_train_evaluate_and_plots(mnist_dir, tmp_path, capsys):
    ckpt, plots = tmp_path / "run.npz", tmp_path / "plots"
    argv = ["train", "--data-dir", mnist_dir, "--limit-train", "500", "--limit-test", "200"]
    argv += ["--steps", "5", "--batch-size", "10", "--save", str(ckpt), "--plots", str(plots)]
    assert main(argv) == 0
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


def test_checkpoint_that_does_not_fit_names_layer_and_shapes(fake_data, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    seed_cnn_checkpoint(bad, **{"dense1/kernel": np.zeros((3136, 512), np.float32)})
    assert main(["evaluate", "--weights", str(bad)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "dense1" in err and "(3136, 512)" in err and "(3136, 1024)" in err


def test_truncated_checkpoint_fails_cleanly(fake_data, tmp_path, capsys):
    good = tmp_path / "good.npz"
    seed_cnn_checkpoint(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:5000])
    assert main(["evaluate", "--weights", str(truncated)]) == EXIT_ERROR
    assert "not a readable npcnn checkpoint" in capsys.readouterr().err
    assert main(["evaluate", "--weights", str(tmp_path / "missing.npz")]) == EXIT_ERROR
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_kernels_ops_trains_to_the_same_weights(fake_data, tmp_path, capsys):
    """`npcnn train --kernels ops` runs the readable ops: the checkpoint of the fast
    default up to rounding (the float32 trajectory bound: 1e-3)."""
    saved = {}
    for kernels in ("ops", "fast"):
        ckpt = tmp_path / f"{kernels}.npz"
        argv = [*TRAIN, "--steps", "4", "--save", str(ckpt), "--kernels", kernels]
        assert main(argv) == 0
        with np.load(ckpt, allow_pickle=False) as archive:
            saved[kernels] = {k: archive[k] for k in archive.files if k.startswith("weight/")}
    assert saved["ops"].keys() == saved["fast"].keys()
    for name in saved["ops"]:
        np.testing.assert_allclose(saved["ops"][name], saved["fast"][name], rtol=0, atol=1e-3)


# ---- fuzzed: any text for a number; whole runs with any paths --------------------------


INT_OPTIONS = {  # option -> smallest valid value
    "--steps": 1,
    "--epochs": 1,
    "--batch-size": 1,
    "--eval-batch-size": 1,
    "--limit-train": 1,
    "--limit-test": 1,
    "--seed": 0,
}


ANY_TEXT = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " 3", "1e3", "0x10", "1_000", "nan", "-inf", "+2", "3.0", "٣"]),
    st.text(max_size=6),
)


def reference_int(text, low):
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= low else None


def reference_float(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


@fuzz(200)
@given(option=st.sampled_from([*INT_OPTIONS, "--learning-rate"]), text=ANY_TEXT)
def test_cli_numbers_are_refused_by_name_or_read_as_python_does(option, text, capsys):
    if option == "--learning-rate":
        expected = reference_float(text)
    else:
        expected = reference_int(text, INT_OPTIONS[option])
    capsys.readouterr()
    try:
        args = build_parser().parse_args(["train", f"{option}={text}"])
    except SystemExit as exc:
        assert exc.code == 2
        assert option in capsys.readouterr().err
        assert expected is None, f"{option}={text!r} refused, reference {expected!r}"
        return
    assert expected is not None, f"{option}={text!r} accepted"
    assert getattr(args, option[2:].replace("-", "_")) == expected


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """A checkpoint from a one-step run, as bytes."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    real = npcnn.datasets.load_dataset
    npcnn.datasets.load_dataset = lambda *a, **k: fake_dataset(40, 10)
    try:
        assert main(["train", "--steps", "1", "--batch-size", "2", "--save", str(path)]) == 0
    finally:
        npcnn.datasets.load_dataset = real
    return path.read_bytes()


SAVE_KINDS = ["none", "new", "existing", "directory", "under-a-file", "nested-missing"]


RESUME_KINDS = [
    "none",
    "good",
    "same-as-save",
    "truncated",
    "foreign",
    "weights-only",
    "text",
    "directory",
]


def make_path(kind, folder: Path, good: bytes, name):
    """A --save or --resume path of the given kind inside ``folder``."""
    if kind == "none":
        return None
    path = folder / name
    if kind in ("existing", "good"):
        path.write_bytes(good)
    elif kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "foreign":
        np.savez(path, weights=np.zeros(3))
    elif kind == "weights-only":  # an npcnn checkpoint with weights, but nothing to resume
        with np.load(io.BytesIO(good)) as archive:
            entries = {k: archive[k] for k in archive.files if k.startswith("weight/")}
        save_checkpoint(path, [(k[7:], v) for k, v in entries.items()], None, None, {})
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "directory":
        path.mkdir()
    elif kind == "under-a-file":
        (folder / "a-file").write_text("x")
        path = folder / "a-file" / name
    elif kind == "nested-missing":
        path = folder / "new" / "sub" / name
    return path


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@fuzz(30)
@given(
    steps=st.integers(1, 3),
    batch=st.integers(1, 6),
    limit_train=st.integers(1, 50),
    learning_rate=st.sampled_from(["1e-3", "0.5", "1e30"]),
    save=st.sampled_from(SAVE_KINDS),
    resume=st.sampled_from(RESUME_KINDS),
)
def test_cli_runs_end_in_one_line_and_lose_no_file(
    steps, batch, limit_train, learning_rate, save, resume, good_checkpoint, monkeypatch, capsys
):
    monkeypatch.setattr(npcnn.datasets, "load_dataset", lambda *a, **k: fake_dataset(40, 10))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_path = make_path(save, folder, good_checkpoint, "run.npz")
        if resume == "same-as-save":
            resume_path = save_path
        else:
            resume_path = make_path(resume, folder, good_checkpoint, "resume.npz")
        before = snapshot(folder)
        argv = ["train", "--steps", str(steps), "--batch-size", str(batch)]
        argv += ["--limit-train", str(limit_train), "--limit-test", "5"]
        argv += ["--learning-rate", learning_rate]
        argv += ["--save", str(save_path)] if save_path else []
        argv += ["--resume", str(resume_path)] if resume_path else []
        capsys.readouterr()
        code = main(argv)
        event(f"exit status {code}")
        err = capsys.readouterr().err
        assert "Traceback" not in err
        after = snapshot(folder)
        if code == 0:
            if save_path is not None:
                assert load_checkpoint(save_path)["meta"]["step"] >= steps
            return
        assert code in (2, 3), code
        assert len([x for x in err.splitlines() if x.startswith("npcnn: error: ")]) == 1, err
        for path, content in before.items():  # nothing that was there is lost or changed
            assert after.get(path) == content, path
        new = set(after) - set(before)
        assert all(p.name.endswith(".diverged.npz") for p in new), new
