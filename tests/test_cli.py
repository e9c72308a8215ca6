"""Faults and bad input: nothing lost, nothing silent, one line for every failure.

Nothing is lost (a diverged run never overwrites a good checkpoint), nothing is
silent (a wrong shape, count or flag is refused by name), and the CLI answers
every expected failure with one line and a non-zero exit status. Training runs
on a tiny fake dataset (no MNIST needed): ``load_dataset`` is replaced.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

import npcnn.datasets
from npcnn import SGD, Adam, Conv2D, Dense, Flatten, Sequential
from npcnn.checkpoint import load_checkpoint
from npcnn.cli import EXIT_DIVERGED, EXIT_ERROR, main
from npcnn.train import (
    DIVERGED_SUFFIX,
    Learner,
    NumpyLearner,
    TrainConfig,
    TrainingDiverged,
    fit,
    make_numpy_learner,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow when diverging


def fake_dataset(n_train=32, n_test=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train)),
        (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test)),
    )


@pytest.fixture
def fake_data(monkeypatch):
    """`npcnn train/evaluate` read this tiny dataset instead of MNIST; returns a call counter."""
    data = fake_dataset()
    calls = []

    def load_dataset(name, data_dir=None, **kwargs):
        calls.append(name)
        return data

    monkeypatch.setattr(npcnn.datasets, "load_dataset", load_dataset)
    return calls


TRAIN = ["train", "--batch-size", "4", "--limit-test", "4", "--eval-batch-size", "4"]
HUGE_LR = ["--learning-rate", "1e30"]


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("npcnn: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---- divergence --------------------------------------------------------------------------
def test_diverged_run_keeps_the_good_checkpoint_it_resumed_from(fake_data, tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    assert main([*TRAIN, "--steps", "2", "--save", str(ckpt)]) == 0
    good = ckpt.read_bytes()
    capsys.readouterr()
    code = main([*TRAIN, *HUGE_LR, "--steps", "8", "--save", str(ckpt), "--resume", str(ckpt)])
    assert code == EXIT_DIVERGED
    line = one_error_line(capsys.readouterr().err)
    assert "diverged" in line and f"{ckpt} keeps the last good checkpoint" in line
    assert ckpt.read_bytes() == good  # before: NaN weights written over it
    aside = load_checkpoint(str(ckpt) + DIVERGED_SUFFIX)
    assert aside["meta"]["diverged"] is True and aside["meta"]["step"] > 2


def test_diverged_fresh_run_writes_nothing_under_the_real_name(fake_data, tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    assert main([*TRAIN, *HUGE_LR, "--steps", "8", "--save", str(ckpt)]) == EXIT_DIVERGED
    assert "nothing was saved to" in one_error_line(capsys.readouterr().err)
    assert not ckpt.exists()
    assert (tmp_path / ("run.npz" + DIVERGED_SUFFIX)).exists()


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


# ---- CLI: numbers and paths checked before any work -----------------------------------
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


# ---- optimizers ---------------------------------------------------------------------------
def adam_with_two_params():
    p1, p2 = np.ones((2, 3)), np.ones(4)
    adam = Adam(0.1)
    adam.apply_gradients([(np.full((2, 3), 0.5), p1), (np.full(4, 0.5), p2)])
    return adam, p1, p2


@pytest.mark.parametrize(
    ("bad_grad", "message"),
    [
        (np.ones((3, 2)), "shape (3, 2)"),  # transposed: was applied to the wrong entries
        (np.ones(1), "shape (1,)"),  # was broadcast
        (np.ones(4, dtype=np.float32), "dtype float32"),
        ([1.0, 2.0, 3.0, 4.0], "not an array"),
    ],
)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimizer_checks_every_gradient_before_changing_anything(bad_grad, message, optimizer):
    adam, p1, p2 = adam_with_two_params()
    opt = adam if optimizer == "adam" else SGD(0.1)
    before = [p1.copy(), p2.copy(), *(a.copy() for a in adam.m + adam.v)]
    iterations = opt.iterations
    with pytest.raises(ValueError, match="gradient 1") as info:
        opt.apply_gradients([(np.ones((2, 3)), p1), (bad_grad, p2)])
    assert message in str(info.value)
    after = [p1, p2, *adam.m, *adam.v]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)  # the first parameter was updated before
    assert opt.iterations == iterations


def test_adam_set_state_checks_shapes_and_count():
    adam, p1, p2 = adam_with_two_params()
    state = adam.get_state()
    fresh = Adam()
    with pytest.raises(ValueError, match="m_1 is"):
        fresh.set_state({**state, "m_1": np.zeros(5)}, [p1, p2])
    with pytest.raises(ValueError, match="m_i and v_i for 2 parameters"):
        fresh.set_state({k: v for k, v in state.items() if k != "v_1"}, [p1, p2])
    with pytest.raises(ValueError, match="m_i and v_i for 3 parameters"):
        fresh.set_state(state, [p1, p2, p2])
    with pytest.raises(ValueError, match="iterations"):
        fresh.set_state({**state, "iterations": np.array(-1)}, [p1, p2])
    assert fresh.iterations == 0 and fresh.m == []  # untouched by the failures
    fresh.set_state(state, [p1, p2])
    assert fresh.iterations == 1


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Adam(learning_rate=-1), "learning_rate"),
        (lambda: Adam(learning_rate=float("nan")), "learning_rate"),
        (lambda: Adam(beta_1=1.0), "beta_1"),
        (lambda: Adam(epsilon="tiny"), "epsilon"),
        (lambda: SGD(learning_rate=True), "learning_rate"),
    ],
)
def test_optimizer_hyperparameters_are_checked(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ---- the model: atomic state changes, counts, flags and inputs ----------------------------
def small_model(**kw):
    return Sequential([Conv2D(2, 3), Flatten(), Dense(3)], seed=1, **kw)


def test_failed_build_leaves_the_model_unchanged():
    model = Sequential([Conv2D(2, 3), Dense(3)], seed=1)  # no Flatten: Dense refuses (H, W, C)
    with pytest.raises(ValueError, match="flat inputs"):
        model.forward(np.zeros((1, 5, 5, 1)))
    assert not model.built and model.layers[0].params == []  # conv1 was built before
    model.layers.insert(1, Flatten())
    model.build((5, 5, 1))  # the generator was not advanced by the failed build
    reference = small_model(input_shape=(5, 5, 1))
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", ["shape", "text", "count"])
def test_set_weights_is_atomic(bad):
    model = small_model(input_shape=(5, 5, 1))
    before = model.get_weights()
    weights = [w + 1 for w in before]
    if bad == "shape":
        weights[2] = np.zeros((3, 3))  # the third weight: before, the first two were copied
    elif bad == "text":
        weights[2] = np.array(["a"] * weights[2].size).reshape(weights[2].shape)
    else:
        weights = weights[:3]
    with pytest.raises(ValueError, match="weight"):
        model.set_weights(weights)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Conv2D(2.5, 3), "filters"),
        (lambda: Conv2D(True, 3), "filters"),
        (lambda: Conv2D(2.0, 3), "filters"),
        (lambda: Dense("3"), "units"),
        (lambda: Dense(False), "units"),
        (lambda: Dense(3, name=5), "name"),
        (lambda: Sequential([Dense(3)], input_shape=(4.0,)), "input_shape"),
        (lambda: Sequential("dense"), "layers"),
        (lambda: Sequential([Dense(3)], seed=1.5), "seed"),
    ],
)
def test_constructors_refuse_non_integer_counts(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_numpy_ints_are_counts():
    assert Dense(np.int64(3)).units == 3 and Conv2D(np.int32(2), 3).filters == 2


def test_flags_and_inputs_are_checked():
    model = small_model(input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match="x must be a numeric array"):
        model.forward("abc")
    with pytest.raises(ValueError, match="x must be a numeric array"):
        model.forward([[1, 2], [3]])
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(np.zeros((2, 5, 5, 1)), batch_size=2.5)
    model.forward(np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="need_dx"):
        model.backward(np.ones((2, 3), np.float32), need_dx="no")
    x = np.random.default_rng(0).random((2, 5, 5, 1)).round(2)
    np.testing.assert_array_equal(model.forward(x.tolist()), model.forward(x))  # lists are fine


def test_resuming_a_weights_only_checkpoint_is_one_line(fake_data, tmp_path, capsys):
    from npcnn.checkpoint import save_checkpoint

    path = tmp_path / "weights.npz"
    save_checkpoint(path, make_numpy_learner(TrainConfig()).named_params(), {}, None, {"step": 0})
    assert main([*TRAIN, "--steps", "1", "--resume", str(path)]) == EXIT_ERROR
    assert "cannot be resumed" in one_error_line(capsys.readouterr().err)  # was a KeyError
