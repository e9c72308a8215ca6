"""Fuzzing ``--save-every``/``save_every`` and every boolean flag of the public API.

- ``--save-every TEXT``: argparse takes exactly the ints >= 0 and refuses the
  rest naming the option; ``TrainConfig(save_every=...)`` likewise;
- ``fit`` with any ``save_every``, step count, batch size and dataset size
  writes a checkpoint at exactly every multiple of ``save_every``, every epoch
  end and the end; a run that crashes at any step (an exception no handler
  catches, as a kill leaves nothing to run) and is resumed from its last
  checkpoint ends bit for bit as the run never stopped, in float32 and float64;
- every flag of :data:`test_flags.FLAGS` with any value: accepted iff it is a
  ``bool`` or ``numpy.bool_``, else ``ValueError`` naming it.

Derandomized, bounded example counts; the runs use a tiny model (the loop and
the checkpoints are what is tested, not the seed CNN), so the file takes seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npcnn.train
from npcnn import Adam, Dense, Flatten, Sequential, Softmax
from npcnn.checkpoint import load_checkpoint
from npcnn.cli import build_parser
from npcnn.train import NumpyLearner, TrainConfig, check_config, fit

from .helpers import fuzz as fuzz_settings
from .test_cli import ANY_TEXT as ANY_CLI_TEXT
from .test_flags import FLAGS, NONE_MEANS_AUTO, call_flag

EXAMPLES = {
    "cli_save_every": 100,
    "config_save_every": 60,
    "cadence": 40,
    "crash": 25,
    "flags": 150,
}


def fuzz(name):
    """The suite's fuzz settings (``tests.helpers.fuzz``) with this file's example counts."""
    return fuzz_settings(EXAMPLES[name])


ANY_TEXT = ANY_CLI_TEXT | st.sampled_from(["0", "-0", "00"])


def reference_save_every(text):
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


@fuzz("cli_save_every")
@given(text=ANY_TEXT)
def test_cli_save_every(text, capsys):
    expected = reference_save_every(text)
    capsys.readouterr()
    try:
        args = build_parser().parse_args(["train", f"--save-every={text}"])
    except SystemExit as exc:
        assert exc.code == 2
        assert "--save-every" in capsys.readouterr().err
        assert expected is None, f"--save-every={text!r} refused, reference {expected!r}"
        return
    assert expected is not None, f"--save-every={text!r} accepted"
    assert args.save_every == expected


ANY_VALUE = st.one_of(
    st.integers(-(10**9), 10**9),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.none(),
    st.integers(0, 100).map(np.int64),
    st.integers(0, 100).map(float),
)


@fuzz("config_save_every")
@given(value=ANY_VALUE)
def test_config_save_every(value):
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
    try:
        check_config(TrainConfig(save_every=value))
    except ValueError as exc:
        assert not ok and "save_every" in str(exc)
        return
    assert ok, f"save_every={value!r} accepted"


# ---- the loop: when checkpoints are written; crash anywhere, resume, same bits ----------
def tiny_learner(dtype, seed=0):
    model = Sequential(
        [Flatten(), Dense(6), Softmax()], input_shape=(28, 28, 1), seed=seed, dtype=dtype
    )
    return NumpyLearner(model, Adam(1e-2))


def tiny_data(n_train):
    rng = np.random.default_rng(n_train)
    images = rng.integers(0, 256, (n_train + 4, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 6, n_train + 4)
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


def quiet(*args, **kwargs):
    pass


@pytest.fixture
def written(monkeypatch):
    """The step of every checkpoint ``fit`` writes, in order."""
    steps = []
    real = npcnn.train.save_checkpoint

    def spy(path, named, state, rng_state, meta, **more):
        steps.append(meta["step"])
        real(path, named, state, rng_state, meta, **more)

    monkeypatch.setattr(npcnn.train, "save_checkpoint", spy)
    return steps


RUNS = dict(
    steps=st.integers(1, 14),
    save_every=st.integers(0, 6),
    batch=st.integers(1, 5),
    n_train=st.integers(1, 12),
)


@fuzz("cadence")
@given(**RUNS)
def test_checkpoints_fall_on_every_multiple_epoch_end_and_the_end(
    steps, save_every, batch, n_train, written, tmp_path
):
    written.clear()
    config = TrainConfig(
        steps=steps, batch_size=batch, save_every=save_every, save=str(tmp_path / "c.npz")
    )
    fit(tiny_learner("float32"), tiny_data(n_train), config, log=quiet)
    per_epoch = max(n_train // batch, 1)
    expected = [
        s
        for s in range(1, steps + 1)
        if (save_every and s % save_every == 0) or s % per_epoch == 0 or s == steps
    ]
    assert written == [*expected, steps]  # fit's last write: after the final evaluation


class Crash(BaseException):
    """Stands for a kill: nothing in ``fit`` handles it, so nothing more is written."""


@fuzz("crash")
@given(
    **RUNS,
    crashes=st.lists(st.integers(1, 14), min_size=1, max_size=3),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_crash_anywhere_then_resume_ends_bit_for_bit(
    steps, save_every, batch, n_train, crashes, dtype, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("crash")
    data = tiny_data(n_train)
    straight, crashed = folder / "straight.npz", folder / "crashed.npz"

    def config(save, resume=None):
        return TrainConfig(
            steps=steps, batch_size=batch, save_every=save_every, save=str(save),
            resume=resume, dtype=dtype,
        )  # fmt: skip

    fit(tiny_learner(dtype), data, config(straight), log=quiet)
    for at in sorted(set(crashes)):
        learner = tiny_learner(dtype)
        step = learner.train_step
        done = [load_checkpoint(crashed)["meta"]["step"] if crashed.exists() else 0]

        def train_step(x, labels, step=step, done=done, at=at):
            done[0] += 1
            if done[0] == at:
                raise Crash
            return step(x, labels)

        learner.train_step = train_step
        resume = str(crashed) if crashed.exists() else None
        try:
            fit(learner, data, config(crashed, resume), log=quiet)
        except Crash:
            last = load_checkpoint(crashed)["meta"]["step"] if crashed.exists() else 0
            lost = at - 1 - last
            per_epoch = max(n_train // batch, 1)
            assert lost < (save_every or per_epoch) and lost < per_epoch
    resume = str(crashed) if crashed.exists() else None
    fit(tiny_learner(dtype), data, config(crashed, resume), log=quiet)
    a, b = load_checkpoint(straight), load_checkpoint(crashed)
    for group in ("weights", "optimizer"):
        assert a[group].keys() == b[group].keys()
        for name in a[group]:
            np.testing.assert_array_equal(a[group][name], b[group][name], err_msg=name)
    assert a["rng"] == b["rng"]
    assert a["meta"]["history"] == b["meta"]["history"]


# ---- every boolean flag, any value -----------------------------------------------------
@fuzz("flags")
@given(key=st.sampled_from(sorted(FLAGS)), value=ANY_VALUE)
def test_boolean_flags(key, value, tmp_path_factory, monkeypatch):
    ok = isinstance(value, (bool, np.bool_)) or (value is None and key in NONE_MEANS_AUTO)
    refused = call_flag(key, value, tmp_path_factory.mktemp("flag"), monkeypatch)
    assert (refused is None) == ok, (key, value, refused)


def test_resuming_a_finished_run_adds_no_second_final_evaluation(tmp_path):
    """A kill after the last checkpoint, then --resume: the history stays as it was."""
    path, data = tmp_path / "done.npz", tiny_data(8)
    config = TrainConfig(steps=3, batch_size=2, save=str(path))
    fit(tiny_learner("float64"), data, config, log=quiet)
    before = load_checkpoint(path)
    config.resume = str(path)
    fit(tiny_learner("float64"), data, config, log=quiet)
    assert load_checkpoint(path)["meta"]["history"] == before["meta"]["history"]
