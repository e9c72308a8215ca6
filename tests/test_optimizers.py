"""Adam and SGD: Keras's update, step by step.

The Adam tests write the Keras formula out on scalars and also check numbers
recorded once from ``keras.optimizers.Adam`` (Keras 3.x, TensorFlow 2.21,
learning_rate=0.1, defaults otherwise), so they run without TensorFlow.
npcnn must reproduce them bit for bit in float32 and to 1e-12 in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npcnn
from npcnn import SGD, Adam

from .helpers import assert_adam_tiers_agree, fuzz

W0 = [0.5, -1.0, 2.0, 0.0]
GRADS = [  # one gradient per step; the last entry is tiny, where epsilon dominates
    [0.1, -0.2, 3.0, 1e-8],
    [-0.3, 0.05, 2.0, 1e-8],
    [0.2, 0.4, -1.0, 1e-8],
]
KERAS_WEIGHTS_FLOAT64 = [  # the variable after each step, recorded from Keras
    [0.40000382824042874, -0.9000022471871271, 1.9000007714922702, -0.00031522881862385303],
    [0.44942198897122654, -0.8530564624857957, 1.8029662886227453, -0.0007603375367302718],
    [0.4475432478704368, -0.8932383733118721, 1.7477775115195533, -0.0013048019628070103],
]
KERAS_WEIGHTS_FLOAT32 = [  # same, float32 variable and gradients
    [0.4000038206577301, -0.9000022411346436, 1.900000810623169, -0.00031522882636636496],
    [0.44942182302474976, -0.8530566096305847, 1.802966594696045, -0.0007603360572829843],
    [0.44754308462142944, -0.8932386636734009, 1.7477777004241943, -0.001304802019149065],
]


def to_float32(h):
    """Round a Python float to the nearest float32 (and back to a Python float)."""
    return float(np.float32(h))


def keras_adam_by_hand(w, grads, lr=0.1, beta_1=0.9, beta_2=0.999, eps=1e-7):
    """Keras's Adam on one float64 scalar, written out; returns w after each step.

    Keras (TensorFlow backend) holds lr in a float32 variable and turns the
    Python floats beta_1, beta_2 into float32 tensors before casting them to
    the variable's dtype, so inside alpha they are float32-rounded even for a
    float64 variable; ``1 - beta_1`` in the moment updates is computed in
    Python first. Without this rounding the float64 numbers differ by ~1e-6.
    """
    lr32, b1_32, b2_32 = to_float32(lr), to_float32(beta_1), to_float32(beta_2)
    m = v = 0.0
    history = []
    for t, g in enumerate(grads, start=1):
        alpha = lr32 * math.sqrt(1 - b2_32**t) / (1 - b1_32**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        w = w - alpha * m / (math.sqrt(v) + eps)  # eps added to sqrt(v), NOT sqrt(v_hat)
        history.append(w)
    return history


def paper_adam_by_hand(w, grads, lr=0.1, beta_1=0.9, beta_2=0.999, eps=1e-7):
    """Kingma & Ba's Algorithm 1: eps added to sqrt(v_hat)."""
    m = v = 0.0
    history = []
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        m_hat, v_hat = m / (1 - beta_1**t), v / (1 - beta_2**t)
        w = w - lr * m_hat / (math.sqrt(v_hat) + eps)
        history.append(w)
    return history


def run_npcnn_adam(dtype):
    w = np.array(W0, dtype=dtype)
    adam = Adam(learning_rate=0.1)
    history = []
    for g in GRADS:
        adam.apply_gradients([(np.array(g, dtype=dtype), w)])
        history.append(w.copy())
    return np.array(history), adam


def test_hand_formula_reproduces_recorded_keras_numbers():
    for i in range(len(W0)):
        by_hand = keras_adam_by_hand(W0[i], [g[i] for g in GRADS])
        np.testing.assert_allclose(by_hand, [w[i] for w in KERAS_WEIGHTS_FLOAT64], rtol=1e-14)


def test_adam_matches_keras_for_three_steps_float64():
    history, adam = run_npcnn_adam(np.float64)
    np.testing.assert_allclose(history, KERAS_WEIGHTS_FLOAT64, rtol=1e-12, atol=1e-16)
    assert adam.iterations == 3


def test_adam_matches_keras_bit_for_bit_float32():
    history, _ = run_npcnn_adam(np.float32)
    assert history.dtype == np.float32
    np.testing.assert_array_equal(history, np.array(KERAS_WEIGHTS_FLOAT32, dtype=np.float32))


def test_epsilon_placement_is_keras_not_paper():
    """For a gradient of 1e-8, sqrt(v) ~ 3e-10 << eps but sqrt(v_hat) ~ 1e-8: the
    first step is 0.1 * 0.0316 * 1e-9 / 1.003e-7 ~ 3.2e-4 (Keras) against
    0.1 * 1e-8 / 1.1e-7 ~ 9.1e-3 (paper), a factor of ~29."""
    keras = keras_adam_by_hand(0.0, [1e-8] * 3)
    paper = paper_adam_by_hand(0.0, [1e-8] * 3)
    history, _ = run_npcnn_adam(np.float64)
    np.testing.assert_allclose(history[:, 3], keras, rtol=1e-12)
    assert abs(history[0, 3] - paper[0]) > 10 * abs(history[0, 3])
    # for ordinary gradients the two forms agree closely, which is why this
    # difference goes unnoticed without a test like this one
    np.testing.assert_allclose(
        history[:, 2], paper_adam_by_hand(W0[2], [g[2] for g in GRADS]), rtol=1e-5
    )


def test_adam_updates_arrays_in_place_elementwise():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((3, 4))
    p_id, expected = id(p), p.copy()
    grads = [rng.standard_normal((3, 4)) for _ in range(3)]
    adam = Adam(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-5)
    for g in grads:
        adam.apply_gradients([(g, p)])
    for idx in np.ndindex(p.shape):
        expected[idx] = keras_adam_by_hand(
            expected[idx], [g[idx] for g in grads], 0.01, 0.8, 0.99, 1e-5
        )[-1]
    assert id(p) == p_id
    np.testing.assert_allclose(p, expected, rtol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_fast_adam_in_slices_is_the_readable_update_bit_for_bit(threads):
    """The fast tier updates in place, slice by slice (bigger slices when the
    threads share the update): over many slices, and over the threads' pieces,
    the same numbers as the readable three lines."""
    from npcnn.fast import threads as fast_threads

    rng = np.random.default_rng(threads)
    start = rng.standard_normal((2, 700_001)).astype(np.float32)  # 5.6 MB: many slices
    before = fast_threads.get_threads()
    fast_threads.set_threads(threads)
    try:
        assert_adam_tiers_agree(start, steps=2)
    finally:
        fast_threads.set_threads(before)


def test_adam_state_roundtrip_continues_identically():
    a = np.array(W0)
    b = np.array(W0)
    straight, interrupted = Adam(0.1), Adam(0.1)
    for g in GRADS[:2]:
        straight.apply_gradients([(np.array(g), a)])
        interrupted.apply_gradients([(np.array(g), b)])
    resumed = Adam(0.1)
    resumed.set_state(interrupted.get_state(), [b])
    straight.apply_gradients([(np.array(GRADS[2]), a)])
    resumed.apply_gradients([(np.array(GRADS[2]), b)])
    assert resumed.iterations == 3
    np.testing.assert_array_equal(a, b)


def test_adam_refuses_a_different_number_of_parameters():
    adam = Adam()
    adam.apply_gradients([(np.ones(2), np.zeros(2)), (np.ones(3), np.zeros(3))])
    with pytest.raises(ValueError, match="Adam was built for 2 parameters, got 1"):
        adam.apply_gradients([(np.ones(2), np.zeros(2))])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_step(dtype):
    p = np.array([1.0, -2.0, 0.5], dtype=dtype)
    g = np.array([0.5, 1.0, -4.0], dtype=dtype)
    sgd = SGD(learning_rate=0.1)
    sgd.apply_gradients([(g, p)])
    np.testing.assert_allclose(p, [0.95, -2.1, 0.9], rtol=1e-6)
    sgd.apply_gradients([(g, p)])
    np.testing.assert_allclose(p, [0.9, -2.2, 1.3], rtol=1e-6)
    assert p.dtype == dtype and sgd.iterations == 2


# ---- bad input: every gradient checked before anything changes ---------------------------


def adam_with_two_params():
    p1, p2 = np.ones((2, 3)), np.ones(4)
    adam = Adam(0.1)
    adam.apply_gradients([(np.full((2, 3), 0.5), p1), (np.full(4, 0.5), p2)])
    return adam, p1, p2


@pytest.mark.parametrize(
    ("bad_grad", "message"),
    [
        (np.ones((3, 2)), "shape (3, 2)"),  # transposed: the same size, the wrong entries
        (np.ones(1), "shape (1,)"),  # would broadcast
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
        np.testing.assert_array_equal(a, b)  # not even the first, good, parameter moved
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


@fuzz(80)
@given(
    g1=gradient_for((2, 3)),
    g2=gradient_for((4,)),
    kind=st.sampled_from(["adam", "sgd"]),
    count=st.sampled_from([1, 2, 2, 2, 3]),
)
def test_any_gradients_are_applied_whole_or_refused_whole(g1, g2, kind, count):
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
        lr = np.float64(np.float32(0.01))  # Keras keeps the learning rate in float32
        ref[0] = ref[0] - lr * g1
        for _ in range(count - 1):
            ref[1] = ref[1] - lr * g2
    np.testing.assert_allclose(p1, ref[0], rtol=1e-12)
    np.testing.assert_allclose(p2, ref[1], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_keep_parameter_dtype(dtype):
    """Python-float hyper-parameters (float64) must not upcast float32 parameters."""
    p = np.array([1.0, -2.0], dtype=dtype)
    g = np.array([0.5, 0.25], dtype=dtype)
    adam = Adam(learning_rate=0.1)
    for _ in range(3):
        adam.apply_gradients([(g, p)])
    assert p.dtype == dtype
    assert adam.m[0].dtype == adam.v[0].dtype == dtype
    SGD(learning_rate=0.1).apply_gradients([(g, p)])
    assert p.dtype == dtype


@pytest.mark.parametrize(
    "make, slots",
    [
        (lambda: SGD(0.1, momentum=0.9), ["momentum_0"]),
        (lambda: npcnn.RMSprop(momentum=0.5), ["momentum_0", "velocity_0"]),
    ],
)
def test_slot_state_round_trip_and_refusals(make, slots):
    p, g = np.ones(3, dtype=np.float32), np.full(3, 0.5, dtype=np.float32)
    opt = make()
    opt.apply_gradients([(g, p)])
    state = opt.get_state()
    assert sorted(k for k in state if k != "iterations") == slots
    fresh = make()
    with pytest.raises(ValueError, match="parameters"):
        fresh.set_state({**state, "momentum_1": state["momentum_0"]}, [p])
    with pytest.raises(ValueError, match="needs"):
        fresh.set_state(state, [np.ones(4, dtype=np.float32)])
    assert fresh.iterations == 0 and fresh.get_state().keys() == {"iterations"}
    fresh.set_state(state, [p])
    twin = p.copy()
    opt.apply_gradients([(g, p)])
    fresh.apply_gradients([(g, twin)])
    assert np.array_equal(p, twin)
