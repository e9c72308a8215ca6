"""``npcnn.gradcheck`` itself: it passes correct gradients, it catches wrong ones
(negative controls), and it checks the whole tutorial network in float64."""

from __future__ import annotations

import numpy as np
import pytest

from npcnn import Conv2D, Dense, MaxPool2D, Reshape, Sequential, Softmax, ops, seed_cnn
from npcnn.gradcheck import (
    GradientCheckError,
    check_gradients,
    check_model,
    numerical_gradient,
    relative_error,
)

# ---- the building blocks ------------------------------------------------------------------


def test_relative_error():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.array([1.0, 0.0]), np.array([3.0, 0.0])) == pytest.approx(0.5)
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    # tiny values are compared against a floor of 1e-8, not against each other
    assert relative_error(np.array([1e-12]), np.array([0.0])) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match=r"shapes differ: \(2,\) vs \(3,\)"):
        relative_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_of_known_function(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    grad = numerical_gradient(lambda: x**3, x, dout)
    np.testing.assert_allclose(grad, 3 * x**2 * dout, rtol=1e-7, atol=1e-9)
    # without dout: the gradient of sum(f())
    np.testing.assert_allclose(numerical_gradient(lambda: x**3, x), 3 * x**2, rtol=1e-7)


def test_numerical_gradient_restores_x_and_fills_only_requested_indices(rng):
    x = rng.standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda: np.sin(x), x, indices=[(0, 1), (2, 3)])
    np.testing.assert_array_equal(x, before)
    expected = np.zeros_like(x)
    expected[0, 1], expected[2, 3] = np.cos(x[0, 1]), np.cos(x[2, 3])
    np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-12)


def test_numerical_gradient_of_a_function_returning_a_view_of_x(rng):
    """Regression: f() returning a view of x (as flatten and reshape do) must not
    be changed by the next perturbation; the gradient of sum(dout * x) is dout."""
    x = rng.standard_normal((2, 3))
    dout = rng.standard_normal(6)
    grad = numerical_gradient(lambda: x.reshape(-1), x, dout)
    np.testing.assert_allclose(grad, dout.reshape(2, 3), rtol=1e-8)


def test_numerical_gradient_needs_float64():
    x = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="numerical gradients need float64 inputs, got float32"):
        numerical_gradient(lambda: x, x)


def test_check_gradients_rejects_a_gradient_of_the_wrong_shape():
    x = np.zeros(3)
    with pytest.raises(ValueError, match=r"gradient for x has shape \(4,\), not \(3,\)"):
        check_gradients(lambda: x, {"x": (x, np.zeros(4))})


# ---- negative controls: wrong backward passes must be caught ------------------------------


def test_correct_relu_passes_and_leaky_one_fails(away_from_zero, rng):
    x = away_from_zero((4, 5))
    dy = rng.standard_normal(x.shape)
    _, cache = ops.relu_forward(x)
    right = ops.relu_backward(dy, cache)
    errors = check_gradients(lambda: ops.relu_forward(x)[0], {"x": (x, right)}, dy)
    assert errors["x"] < 1e-8
    wrong = dy  # passes the gradient at x < 0 too
    with pytest.raises(GradientCheckError, match=r"x: relative error 1 > 1e-06"):
        check_gradients(lambda: ops.relu_forward(x)[0], {"x": (x, wrong)}, dy)


@pytest.mark.parametrize(
    "mistake",
    [
        lambda dw: dw.transpose(0, 1, 3, 2),  # Cin and Cout swapped
        lambda dw: dw[::-1, ::-1],  # kernel flipped: convolution instead of correlation
        lambda dw: dw.transpose(1, 0, 2, 3),  # kh and kw swapped
        lambda dw: dw * 1.001,  # off by a tenth of a percent
    ],
    ids=["cin-cout", "flipped", "kh-kw", "scaled"],
)
def test_wrong_conv_dw_is_caught_and_named(rng, mistake):
    x = rng.standard_normal((2, 5, 5, 3))
    w = rng.standard_normal((3, 3, 3, 3))
    b = rng.standard_normal(3)
    y, cache = ops.conv2d_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, cache)

    def f():
        return ops.conv2d_forward(x, w, b)[0]

    check_gradients(f, {"w": (w, dw), "b": (b, db)}, dy)  # the real one passes
    with pytest.raises(GradientCheckError) as info:
        check_gradients(f, {"w": (w, mistake(dw)), "b": (b, db)}, dy)
    assert "w: relative error" in str(info.value)
    assert "b:" not in str(info.value)  # only the wrong array is named


def test_wrong_softmax_and_crossentropy_backward_are_caught(rng):
    z = rng.standard_normal((3, 4))
    p, cache = ops.softmax_forward(z)
    dp = rng.standard_normal(p.shape)
    forgot_jacobian_term = p * dp  # the sum_k dp_k p_k term left out
    with pytest.raises(GradientCheckError, match="z: relative error"):
        check_gradients(lambda: ops.softmax_forward(z)[0], {"z": (z, forgot_jacobian_term)}, dp)

    labels = np.array([0, 3, 1])
    _, cache = ops.sparse_categorical_crossentropy_forward(p, labels)
    dlogits_not_dp = cache.q - np.eye(4)[labels]  # forgot to divide by the probabilities
    with pytest.raises(GradientCheckError, match="y_pred: relative error"):
        check_gradients(
            lambda: ops.sparse_categorical_crossentropy_forward(p, labels)[0],
            {"y_pred": (p, dlogits_not_dp)},
        )


def test_wrong_maxpool_backward_is_caught(distinct, rng):
    x = distinct((1, 4, 4, 2))
    y, cache = ops.maxpool2d_forward(x, 2)
    dy = rng.standard_normal(y.shape)
    spread_evenly = np.repeat(np.repeat(dy, 2, axis=1), 2, axis=2) / 4  # average-pool's gradient
    with pytest.raises(GradientCheckError, match="x: relative error"):
        check_gradients(lambda: ops.maxpool2d_forward(x, 2)[0], {"x": (x, spread_evenly)}, dy)


def test_sampled_check_catches_a_wrong_gradient(rng):
    x = rng.standard_normal((50, 40))
    wrong = 2 * x  # the gradient of sum(x**2 / 2) is x
    with pytest.raises(GradientCheckError):
        check_gradients(lambda: x**2 / 2, {"x": (x, wrong)}, num_checks=5)


# ---- whole models -------------------------------------------------------------------------


def small_cnn(seed=0):  # seed_cnn's shape, small and float64, so every entry can be checked
    return Sequential(
        [
            Conv2D(3, 3, padding="same", activation="relu", name="conv"),
            MaxPool2D(2, name="pool"),
            Reshape((3 * 3 * 3,), name="flat"),
            Dense(5, activation="relu", name="dense"),
            Dense(4, name="logits"),
            Softmax(name="softmax"),
        ],
        input_shape=(6, 6, 2),
        seed=seed,
        dtype="float64",
    )


def test_check_model_small_cnn_every_entry(rng):
    model = small_cnn()
    x = rng.standard_normal((3, 6, 6, 2))
    # tol 1e-5, not 1e-6: round-off alone reaches ~2e-6 on the smallest entries
    # for some seeds; real mistakes give 1e-3 and more (see the next test)
    errors = check_model(model, x, np.array([0, 3, 1]), num_checks=None, tol=1e-5)
    assert set(errors) == {
        "conv/kernel",
        "conv/bias",
        "dense/kernel",
        "dense/bias",
        "logits/kernel",
        "logits/bias",
    }
    assert max(errors.values()) < 1e-5


def test_check_model_catches_a_wrong_layer_and_names_it(rng):
    model = small_cnn()
    dense = model.layers[3]
    right_backward = dense.backward

    def backward_with_wrong_kernel_gradient(dy, need_dx=True):
        dx = right_backward(dy, need_dx)
        dense.grads = [dense.grads[0] * 1.01, dense.grads[1]]
        return dx

    dense.backward = backward_with_wrong_kernel_gradient
    x = rng.standard_normal((3, 6, 6, 2))
    with pytest.raises(GradientCheckError) as info:
        check_model(model, x, np.array([0, 3, 1]), num_checks=None, tol=1e-5)
    assert "dense/kernel: relative error" in str(info.value)
    assert "dense/bias" not in str(info.value)


def test_check_model_seed_cnn_float64(rng):
    """The full tutorial network, sampled entries of every parameter, batch of 2."""
    model = seed_cnn(seed=0, dtype="float64")
    x = rng.uniform(0, 1, size=(2, 28, 28, 1))
    errors = check_model(model, x, np.array([3, 8]), num_checks=6, tol=1e-5)
    assert [name for name, _ in model.named_params()] == list(errors)
    assert max(errors.values()) < 1e-5
