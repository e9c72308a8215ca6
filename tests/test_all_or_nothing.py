"""All or nothing: a call that changes state either completes or changes nothing.

Every optimizer's ``apply_gradients`` (SGD, Adam on the fast and the ops
kernels) checks every parameter, gradient and moment -- a read-only
parameter included -- before it updates any; ``Sequential.set_weights``,
``Adam.set_state`` and resuming a run likewise check everything first. Each
test makes the *last* item bad, so that a loop which updates as it checks is
caught having changed the first ones.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from npcnn import SGD, Adam, Dense, RMSprop, Sequential
from npcnn.checkpoint import load_checkpoint, save_checkpoint
from npcnn.train import TrainConfig, fit, make_numpy_learner

OPTIMIZERS = {
    "sgd": lambda: SGD(0.1),
    "sgd-nesterov": lambda: SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: RMSprop(momentum=0.5),
    "adam-fast": lambda: Adam(kernels="fast"),
    "adam-ops": lambda: Adam(kernels="ops"),
}


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def strided(a):
    """The same values as a view that is not C-contiguous (a column of a wider array)."""
    wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


# what goes wrong with the last (gradient, parameter) pair; the pairs before it are fine
BREAKAGES = {
    "read-only parameter": lambda g, p: (g, read_only(p)),
    "gradient of another shape": lambda g, p: (g[:-1], p),
    "gradient of another dtype": lambda g, p: (g.astype(np.float64), p),
    "gradient not an array": lambda g, p: (g.tolist(), p),
    "integer parameter": lambda g, p: (g, p.astype(np.int32)),
    "not a pair": lambda g, p: (g,),
}


def snapshot(optimizer, params):
    return copy.deepcopy(optimizer.get_state()), [p.copy() for p in params]


def assert_unchanged(optimizer, params, before):
    state, values = before
    now = optimizer.get_state()
    assert now.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(now[key], state[key], err_msg=key)
    assert optimizer.iterations == int(state["iterations"])
    for p, v in zip(params, values):
        np.testing.assert_array_equal(p, v)


def setup(kind, rng):
    """An optimizer that has taken one step on three float32 parameters."""
    params = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (4,), (4, 2))]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    optimizer = OPTIMIZERS[kind]()
    optimizer.apply_gradients(zip(grads, params))
    return optimizer, params, grads


@pytest.mark.parametrize("kind", OPTIMIZERS)
@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_bad_last_pair_changes_nothing(kind, breakage, rng):
    optimizer, params, grads = setup(kind, rng)
    before = snapshot(optimizer, params)
    pairs = list(zip(grads, params))
    pairs[-1] = BREAKAGES[breakage](*pairs[-1])
    with pytest.raises(ValueError, match="2"):  # names the pair's index
        optimizer.apply_gradients(pairs)
    assert_unchanged(optimizer, params, before)
    optimizer.apply_gradients(zip(grads, params))  # and it still works after
    assert optimizer.iterations == int(before[0]["iterations"]) + 1


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_a_read_only_second_parameter_on_the_first_step_changes_nothing(kind, rng):
    """The first step creates Adam's moments: a refusal must not leave them half-made."""
    p1, p2 = rng.standard_normal(5).astype(np.float32), read_only(np.ones(3, np.float32))
    g1, g2 = np.ones(5, np.float32), np.ones(3, np.float32)
    optimizer = OPTIMIZERS[kind]()
    before = snapshot(optimizer, [p1, p2])
    with pytest.raises(ValueError, match="parameter 1 is read-only"):
        optimizer.apply_gradients([(g1, p1), (g2, p2)])
    assert_unchanged(optimizer, [p1, p2], before)


def test_fast_adam_refuses_a_strided_parameter_before_updating_any(rng):
    """The fast tier updates a flat view of each parameter: a strided one is refused up front."""
    optimizer, params, grads = setup("adam-fast", rng)
    params[-1] = strided(params[-1])
    before = snapshot(optimizer, params)
    with pytest.raises(ValueError, match="contiguous"):
        optimizer.apply_gradients(zip(grads, params))
    assert_unchanged(optimizer, params, before)


@pytest.mark.parametrize("slot", ["m", "v"])
@pytest.mark.parametrize("kernels", ["fast", "ops"])
def test_adam_checks_every_moment_before_updating(slot, kernels, rng):
    optimizer, params, grads = setup(f"adam-{kernels}", rng)
    getattr(optimizer, slot)[-1] = getattr(optimizer, slot)[-1].astype(np.float64)
    before = snapshot(optimizer, params)
    with pytest.raises(ValueError, match="moment"):
        optimizer.apply_gradients(zip(grads, params))
    assert_unchanged(optimizer, params, before)


def test_adam_set_state_takes_its_own_c_ordered_copy(rng):
    """Moments handed over in Fortran order, as ``np.load`` may give them: the fast
    tier must update the optimizer's own moments, exactly as the ops tier does."""
    optimizers = {k: Adam(kernels=k) for k in ("fast", "ops")}
    params = {k: [rng.standard_normal((6, 5)).astype(np.float32)] for k in optimizers}
    params["ops"] = [p.copy() for p in params["fast"]]
    state = {
        "iterations": np.array(3),
        "m_0": np.asfortranarray(rng.standard_normal((6, 5)).astype(np.float32)),
        "v_0": np.asfortranarray(rng.random((6, 5)).astype(np.float32)),
    }
    given = copy.deepcopy(state)
    g = rng.standard_normal((6, 5)).astype(np.float32)
    for kernels, optimizer in optimizers.items():
        optimizer.set_state(state, params[kernels])
        optimizer.apply_gradients([(g, params[kernels][0])])
    fast, ops = optimizers["fast"].get_state(), optimizers["ops"].get_state()
    for key in ("m_0", "v_0"):
        np.testing.assert_array_equal(fast[key], ops[key])
        assert not np.array_equal(fast[key], given[key])  # the step did move them
        np.testing.assert_array_equal(state[key], given[key])  # the caller's arrays are theirs
    np.testing.assert_array_equal(params["fast"][0], params["ops"][0])


def test_adam_set_state_with_a_bad_last_moment_changes_nothing(rng):
    optimizer, params, grads = setup("adam-fast", rng)
    before = snapshot(optimizer, params)
    bad = {**before[0], "iterations": np.array(9), "v_2": np.zeros((4, 3), np.float32)}
    with pytest.raises(ValueError, match="v_2"):
        optimizer.set_state(bad, params)
    assert_unchanged(optimizer, params, before)


def tiny_model(seed=0):
    return Sequential([Dense(4, activation="relu"), Dense(3)], input_shape=(5,), seed=seed)


def test_set_weights_with_a_read_only_last_parameter_changes_nothing():
    model = tiny_model()
    model.layers[-1].params[-1] = read_only(model.layers[-1].params[-1])
    before = model.get_weights()
    new = [w + 1 for w in before]
    with pytest.raises(ValueError, match="dense.*bias is read-only"):
        model.set_weights(new)
    for now, was in zip(model.get_weights(), before):
        np.testing.assert_array_equal(now, was)


def test_set_weights_with_a_bad_last_weight_changes_nothing():
    model = tiny_model()
    before = model.get_weights()
    new = [w + 1 for w in before]
    new[-1] = np.array(["a", "b", "c"])
    with pytest.raises(ValueError, match="numeric"):
        model.set_weights(new)
    for now, was in zip(model.get_weights(), before):
        np.testing.assert_array_equal(now, was)


# ---- resuming a run ----------------------------------------------------------------------
def tiny_data(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 12)
    return (images[:8], labels[:8]), (images[8:], labels[8:])


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "good.npz"
    config = TrainConfig(steps=2, batch_size=4, save=str(path), seed=1)
    fit(make_numpy_learner(config), tiny_data(), config, log=quiet)
    return load_checkpoint(path)


def write_variant(path, ckpt, weights=None, optimizer=None, rng_state="keep"):
    named = list((weights or ckpt["weights"]).items())
    rng_state = ckpt["rng"] if rng_state == "keep" else rng_state
    save_checkpoint(path, named, optimizer or ckpt["optimizer"], rng_state, ckpt["meta"])


def learner_state(learner):
    return [w.copy() for _, w in learner.named_params()], copy.deepcopy(learner.optimizer_state())


def assert_learner_unchanged(learner, before):
    weights, state = before
    for (name, now), was in zip(learner.named_params(), weights):
        np.testing.assert_array_equal(now, was, err_msg=name)
    now = learner.optimizer_state()
    assert now.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(now[key], state[key], err_msg=key)


def trained_learner(steps=1):
    """A learner that has moved off its initial state, so that a restore would show."""
    config = TrainConfig(steps=steps, batch_size=4, seed=5)
    learner = make_numpy_learner(config)
    fit(learner, tiny_data(1), config, log=quiet)
    return learner


@pytest.mark.parametrize("what", ["last moment", "sampler state", "iterations"])
def test_a_resume_that_fails_changes_nothing(good_checkpoint, tmp_path, what):
    bad = tmp_path / "bad.npz"
    optimizer = dict(good_checkpoint["optimizer"])
    rng_state = "keep"
    if what == "last moment":
        optimizer["v_7"] = np.zeros(3, np.float32)
    elif what == "sampler state":
        rng_state = {"bit_generator": "MT19937", "state": "garbage"}
    else:
        optimizer["iterations"] = np.array(-1)
    write_variant(bad, good_checkpoint, optimizer=optimizer, rng_state=rng_state)
    learner = trained_learner()
    before = learner_state(learner)
    config = TrainConfig(steps=4, batch_size=4, resume=str(bad), seed=5)
    with pytest.raises(ValueError):
        fit(learner, tiny_data(), config, log=quiet)
    assert_learner_unchanged(learner, before)


def test_a_resume_whose_weights_are_refused_puts_the_optimizer_state_back(
    good_checkpoint, tmp_path
):
    """The learner refuses the weights after taking the optimizer state: that state is undone."""
    learner = trained_learner()
    layer = learner.model.layers[-2]  # dense2
    layer.params[-1] = read_only(layer.params[-1])
    before = learner_state(learner)
    path = tmp_path / "good.npz"
    write_variant(path, good_checkpoint)
    config = TrainConfig(steps=4, batch_size=4, resume=str(path), seed=5)
    with pytest.raises(ValueError, match="read-only"):
        fit(learner, tiny_data(), config, log=quiet)
    assert_learner_unchanged(learner, before)
