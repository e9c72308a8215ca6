"""Fuzzing the public API and the CLI with bad input.

The contract every test checks: a call either gives the reference result, or
raises the documented error (``ValueError`` naming the argument; for the CLI
argparse's ``SystemExit(2)`` naming the option, or exit status 2 or 3 with
one ``npcnn: error:`` line), never another exception, never a half-changed
model, optimizer or file.

Derandomized (the same examples every run) with bounded example counts: the
whole file tries ``EXAMPLES_PER_RUN`` inputs and runs in a few seconds. The CLI
runs in-process, ``main(argv)``, on a tiny fake dataset.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npcnn.datasets
from npcnn import SGD, Adam, Conv2D, Dense, Flatten, Sequential
from npcnn.checkpoint import load_checkpoint, save_checkpoint
from npcnn.cli import build_parser, main

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow when diverging

EXAMPLES = {  # test -> max_examples; the sum is what one CI run tries
    "cli_numbers": 200,
    "cli_runs": 30,
    "counts": 100,
    "input_shape": 60,
    "set_weights": 60,
    "optimizers": 80,
    "forward": 80,
    "checkpoint_bytes": 40,
}
EXAMPLES_PER_RUN = sum(EXAMPLES.values()) + 100  # counts runs twice (Dense and Conv2D)


def fuzz(name):
    return settings(
        max_examples=EXAMPLES[name],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# ---- CLI numbers: argparse refuses by option name, or the reference value --------------
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


@fuzz("cli_numbers")
@given(option=st.sampled_from([*INT_OPTIONS, "--learning-rate"]), text=ANY_TEXT)
def test_cli_numbers(option, text, capsys):
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


# ---- CLI runs: exit 0, or 2/3 with one line; a good file is never lost ------------------
def fake_dataset():
    rng = np.random.default_rng(0)
    return (
        (rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40)),
        (rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), rng.integers(0, 10, 10)),
    )


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """A checkpoint from a one-step run, as bytes."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    real = npcnn.datasets.load_dataset
    npcnn.datasets.load_dataset = lambda *a, **k: fake_dataset()
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


@fuzz("cli_runs")
@given(
    steps=st.integers(1, 3),
    batch=st.integers(1, 6),
    limit_train=st.integers(1, 50),
    learning_rate=st.sampled_from(["1e-3", "0.5", "1e30"]),
    save=st.sampled_from(SAVE_KINDS),
    resume=st.sampled_from(RESUME_KINDS),
)
def test_cli_runs(
    steps, batch, limit_train, learning_rate, save, resume, good_checkpoint, monkeypatch, capsys
):
    monkeypatch.setattr(npcnn.datasets, "load_dataset", lambda *a, **k: fake_dataset())
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


# ---- layer and model constructors --------------------------------------------------------
ANY_VALUE = st.one_of(
    st.integers(-3, 70),
    st.integers(0, 5).map(np.int64),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.lists(st.integers(1, 3), max_size=2),
)


def is_count(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


@fuzz("counts")
@given(value=ANY_VALUE)
def test_dense_units(value):
    try:
        layer = Dense(value)
    except ValueError as exc:
        assert "units" in str(exc)
        assert not is_count(value)
        return
    assert is_count(value) and layer.units == value


@fuzz("counts")
@given(value=ANY_VALUE)
def test_conv2d_filters(value):
    try:
        layer = Conv2D(value, 3)
    except ValueError as exc:
        assert "filters" in str(exc)
        assert not is_count(value)
        return
    assert is_count(value) and layer.filters == value


@fuzz("input_shape")
@given(shape=st.lists(ANY_VALUE, max_size=4))
def test_build_is_atomic(shape):
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], seed=0)
    try:
        model.build(shape)
    except ValueError as exc:
        assert "input_shape" in str(exc) or "conv2d" in str(exc) or "dense" in str(exc)
        assert not model.built
        assert all(layer.params == [] for layer in model.layers)
        assert model.rng.bit_generator.state == np.random.default_rng(0).bit_generator.state
        return
    assert model.input_shape == tuple(shape)


# ---- set_weights: all or nothing --------------------------------------------------------
SHAPES = [(3, 3, 1, 2), (2,), (18, 3), (3,)]  # the small model below, input (5, 5, 1)


def weight_lists():
    one = st.one_of(
        *(
            hnp.arrays(np.float64, s, elements=st.floats(-1, 1)) for s in SHAPES
        ),  # right or wrong place
        hnp.arrays(
            st.sampled_from([np.float32, np.int8, np.bool_, np.complex64, np.dtype("U1")]),
            hnp.array_shapes(max_dims=2, max_side=3),
        ),
        st.text(max_size=2),
        st.none(),
    )
    return st.lists(one, min_size=0, max_size=5)


@fuzz("set_weights")
@given(weights=weight_lists())
def test_set_weights(weights):
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], input_shape=(5, 5, 1), seed=0)
    before = model.get_weights()
    try:
        model.set_weights(weights)
    except ValueError as exc:
        assert "weight" in str(exc)
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)
        return
    for w, got in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(np.asarray(w).astype(np.float32), got)


# ---- optimizers: every pair checked first -----------------------------------------------
def gradient_for(shape):
    return st.one_of(
        hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)),
        hnp.arrays(
            st.sampled_from([np.float64, np.float32, np.int64]),
            hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
            elements=st.just(1),
        ),
        st.lists(st.floats(-1, 1), max_size=4),
    )


@fuzz("optimizers")
@given(
    g1=gradient_for((2, 3)),
    g2=gradient_for((4,)),
    kind=st.sampled_from(["adam", "sgd"]),
    count=st.sampled_from([1, 2, 2, 2, 3]),
)
def test_optimizers(g1, g2, kind, count):
    p1, p2 = np.linspace(-1, 1, 6).reshape(2, 3), np.linspace(0, 1, 4)
    opt = Adam(0.01) if kind == "adam" else SGD(0.01)
    opt.apply_gradients([(np.ones((2, 3)), p1), (np.ones(4), p2)])  # moments exist
    state = {k: np.array(v, copy=True) for k, v in opt.get_state().items()}
    before = [p1.copy(), p2.copy()]
    pairs = [(g1, p1), (g2, p2), (g2, p2)][:count]
    try:
        opt.apply_gradients(pairs)
    except ValueError as exc:
        assert "gradient" in str(exc) or "parameter" in str(exc)
        np.testing.assert_array_equal(p1, before[0])
        np.testing.assert_array_equal(p2, before[1])
        for key, value in opt.get_state().items():
            np.testing.assert_array_equal(value, state[key])
        return
    # accepted: the reference (the readable ops, or w - lr * g) gives the same numbers
    assert g1.shape == (2, 3) and g1.dtype == np.float64
    assert count == 1 or (g2.shape == (4,) and g2.dtype == np.float64)
    ref = [before[0].copy(), before[1].copy()]
    if kind == "adam":
        assert count == 2  # Adam has moments for exactly two parameters
        reference = Adam(0.01, kernels="ops")
        reference.set_state(state, ref)
        reference.apply_gradients([(g1, ref[0]), (g2, ref[1])])
    else:  # SGD keeps no state: any number of pairs, one update each
        ref[0] = ref[0] - 0.01 * g1
        for _ in range(count - 1):
            ref[1] = ref[1] - 0.01 * g2
    np.testing.assert_allclose(p1, ref[0], rtol=1e-12)
    np.testing.assert_allclose(p2, ref[1], rtol=1e-12)


# ---- forward: arrays and lists of numbers, nothing else ---------------------------------
MODEL = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], input_shape=(5, 5, 1), seed=0)
BATCH = np.random.default_rng(1).random((2, 5, 5, 1))


@fuzz("forward")
@given(
    x=st.one_of(
        st.text(max_size=3),
        st.none(),
        st.integers(),
        st.floats(),
        st.just(BATCH.tolist()),
        st.just([[1.0, 2.0], [3.0]]),
        st.just({"x": BATCH}),
        hnp.arrays(
            st.sampled_from([np.float32, np.float64, np.uint8, np.bool_, np.complex128, object]),
            st.sampled_from([(2, 5, 5, 1), (1, 5, 5, 1), (0, 5, 5, 1), (2, 5, 5), (5, 5, 1)]),
        ),
    )
)
def test_forward(x):
    try:
        y = MODEL.forward(x)
    except ValueError as exc:
        assert "x must be" in str(exc) or "expected a batch of shape" in str(exc)
        return
    reference = np.asarray(x).astype(np.float32)
    assert reference.ndim == 4 and reference.shape[1:] == (5, 5, 1)
    np.testing.assert_array_equal(y, MODEL.forward(reference))


# ---- checkpoints: a damaged file is a ValueError, never anything else --------------------
@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "small.npz"
    model = Sequential([Dense(2)], input_shape=(3,), seed=0)
    save_checkpoint(path, model.named_params(), Adam().get_state(), None, {"step": 1})
    return path.read_bytes()


@fuzz("checkpoint_bytes")
@given(data=st.data())
def test_damaged_checkpoint(data, small_checkpoint):
    content = bytearray(small_checkpoint)
    cut = data.draw(st.integers(0, len(content)))
    if data.draw(st.booleans()):
        content = content[:cut]
    elif cut < len(content):
        content[cut] ^= data.draw(st.integers(1, 255))
    fd, name = tempfile.mkstemp(suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(content))
        try:
            out = load_checkpoint(name)
        except ValueError:
            return
        assert set(out) == {"weights", "optimizer", "rng", "meta"}
    finally:
        os.unlink(name)
