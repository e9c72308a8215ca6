"""The fast tier's fused block against TensorFlow: ``maxpool(relu(conv2d(x, w) + b))``.

``npcnn/fast/fused.py`` computes Conv2D(relu) + MaxPool2D reordered, as
conv -> pool -> bias -> ReLU, and must route the gradient exactly as TF does
(the first tap of a window whose ReLU output is the max; nothing through
ReLU's zeros). The model parity tests reach the block only through the seed
CNN: random weights, 'valid' 2x2 pooling, biases that start at 0, so exact
ties and exact zeros of ``z + b`` are rare there. These tests aim at them
(each was added because a planted bug in the block went unnoticed, see
``python -m parity_tests.mutants``):

- grid values: x, w, b from {-1, 0, 1, 2} and dy from {0.5, 1, 1.5, 2}, so
  every sum is exact in both dtypes and all four results must match bit for
  bit; windows are full of ties and of exact zeros of ``z + b`` (where ReLU's
  gradient is 0); pool padding 'same' as well as 'valid' (the padded cells
  must never win);
- rounding ties: ``fl(z_1 + b) == fl(z_2 + b)`` with ``z_1 != z_2``; TF sends
  the gradient to the first such tap, not to the tap whose raw ``z`` equals
  ``y - b`` (there may be none).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip(
    "tensorflow", reason="parity tests compare against TensorFlow: pip install -e '.[test]'"
)

from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from npcnn import fast  # noqa: E402
from npcnn.ops.padding import output_length  # noqa: E402
from parity_tests import tf_reference as tf_ref  # noqa: E402
from parity_tests.strategies import DTYPES, grid_arrays, window_cases  # noqa: E402
from parity_tests.tolerances import assert_exact  # noqa: E402

by_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])


@pytest.fixture(scope="module", autouse=True, params=["im2col", "rowwise"])
def convolution(request):
    """Every test runs with the fast tier's two convolutions: through one im2col
    matrix, and row-wise (``npcnn/fast/rowwise.py``) for every kernel."""
    from npcnn.fast import conv2d as fast_conv2d

    threshold = fast_conv2d.ROWWISE_MIN_K
    fast_conv2d.ROWWISE_MIN_K = 1 if request.param == "rowwise" else 10**9
    yield request.param
    fast_conv2d.ROWWISE_MIN_K = threshold


def check_fused(x, w, b, dy, conv, pool):
    """npcnn's fused block and TF's composition: y, dx, dw, db bit for bit."""
    y, cache = fast.conv2d_relu_maxpool2d_forward(x, w, b, *conv, *pool)
    dx, dw, db = fast.conv2d_relu_maxpool2d_backward(dy, cache)
    y_tf, (dx_tf, dw_tf, db_tf) = tf_ref.conv2d_relu_maxpool2d(x, w, b, dy, *conv, *pool)
    assert_exact(y, y_tf, "fused y")
    assert_exact(dx, dx_tf, "fused dx")
    assert_exact(dw, dw_tf, "fused dw")
    assert_exact(db, db_tf, "fused db")


@st.composite
def pool_geometries(draw, conv_out_hw):
    """(pool, strides, padding) for a conv output of spatial size ``conv_out_hw``."""
    padding = draw(st.sampled_from(["valid", "same"]))
    top = (lambda side: min(3, side)) if padding == "valid" else (lambda side: 3)
    pool = tuple(draw(st.integers(1, top(side))) for side in conv_out_hw)
    strides = tuple(draw(st.integers(1, 3)) for _ in conv_out_hw)
    return pool, strides, padding


@by_dtype
@given(case=window_cases(max_batch=2, max_channels=2, max_out_channels=2), data=st.data())
def test_fused_block_on_a_grid_matches_tf(dtype, case, data):
    pool = data.draw(pool_geometries(case.output_hw), label="pool (window, strides, padding)")
    out_hw = tuple(
        output_length(n, k, s, pool[2]) for n, k, s in zip(case.output_hw, pool[0], pool[1])
    )
    note(f"conv {case}; pooled output {out_hw}")
    x = data.draw(grid_arrays(case.input_shape, dtype), label="x")
    w = data.draw(grid_arrays(case.kernel_shape, dtype), label="w")
    b = data.draw(grid_arrays((case.out_channels,), dtype), label="b")
    levels = st.sampled_from([0.5, 1.0, 1.5, 2.0])
    dy_shape = (case.batch, *out_hw, case.out_channels)
    dy = data.draw(hnp.arrays(np.dtype(dtype), dy_shape, elements=levels), label="dy")
    check_fused(x, w, b, dy, (case.strides, case.padding), pool)


@by_dtype
def test_fused_block_rounding_ties_go_to_the_first_tap(dtype):
    """1x1 conv with w = 1 (so z = x exactly), b = 3, windows of two taps:

    - [1 + u, 1]: both round to fl(z + 3) = 4; TF picks the first tap, whose
      raw z is *not* y - b = 1;
    - [1 + u, 1 + 2u]: both round to 4 (ties to even), and no raw z equals
      y - b = 1 at all.

    (u = machine epsilon: 1 + u is the float after 1.)
    """
    u = np.finfo(dtype).eps
    x = np.array([1 + u, 1, 1 + u, 1 + 2 * u], dtype=dtype).reshape(1, 1, 4, 1)
    w = np.ones((1, 1, 1, 1), dtype=dtype)
    b = np.array([3], dtype=dtype)
    dy = np.array([1.0, 2.0], dtype=dtype).reshape(1, 1, 2, 1)
    assert np.all(x + b == dtype(4))  # the premise: every tap rounds to the same value
    check_fused(x, w, b, dy, ((1, 1), "valid"), ((1, 2), (1, 2), "valid"))
