"""The explorer's JSON API (npcnn/explore/server.py, inspect.py): every number it
sends is npcnn's own, and a bad request gets a 400 that says why, while the
server keeps serving."""

from __future__ import annotations

import numpy as np
import pytest

import npcnn
from npcnn import ops
from npcnn.explore.server import unpacked

from .conftest import request

DIGIT = np.zeros((28, 28))
DIGIT[4:24, 13:16] = 1.0  # a stroke: a "1"


def test_predict_gives_every_layer_and_the_models_probabilities(explorer_url):
    status, answer = request(explorer_url, "/api/predict", {"image": DIGIT.tolist()})
    assert status == 200
    model = npcnn.seed_cnn(seed=3, kernels="ops")
    probs = model.forward(DIGIT[None, :, :, None])[0]
    np.testing.assert_allclose(answer["output"], probs, atol=1e-5)
    assert answer["prediction"] == int(np.argmax(probs))
    kinds = [(layer["name"], layer["kind"], layer["shape"]) for layer in answer["layers"]]
    assert kinds[0] == ("conv1", "maps", [28, 28, 32]) and kinds[2][2] == [14, 14, 64]
    assert kinds[-1] == ("softmax", "vector", [10])
    conv1 = unpacked(answer["layers"][0]["maps"], (32, 28, 28))  # a map per channel
    want = model.layers[0].forward(DIGIT[None, :, :, None].astype(np.float32))[0]
    np.testing.assert_array_equal(conv1, np.moveaxis(want, -1, 0))  # npcnn's own numbers


def test_a_conv_cell_is_the_sum_of_its_window_times_the_kernel_plus_bias(explorer_url):
    """conv2 (layer 2) at a border cell: the window holds 'same' padding at the
    top/left, the products sum to ``sum``, ``sum + bias`` to the value the
    forward pass computed there, and the code line is ops' convolution."""
    body = {"image": DIGIT.tolist(), "layer": 2, "row": 0, "col": 13, "channel": 5}
    status, cell = request(explorer_url, "/api/explain", body)
    assert status == 200 and cell["type"] == "Conv2D"
    assert np.shape(cell["window"]) == (5, 5, 32)
    padded = np.array(cell["padded"])
    assert padded[:2].all() and not padded[2:, :3].any()  # rows above the image; 'same' = 2
    assert padded[:, 3:].all()  # right of the last column (13 + 2 > 13)
    np.testing.assert_allclose(np.sum(cell["products"]), cell["sum"], rtol=1e-6, atol=1e-7)
    assert cell["z"] == pytest.approx(cell["sum"] + cell["bias"])
    _, layers = request(explorer_url, "/api/predict", {"image": DIGIT.tolist()})
    shown = unpacked(layers["layers"][2]["maps"], (64, 14, 14))[5, 0, 13]
    assert cell["value"] == pytest.approx(shown, abs=1e-5)  # the value the map shows
    assert cell["code"]["file"] == "npcnn/ops/conv2d.py" and "cols @ w" in cell["code"]["text"]


def test_a_pool_cell_marks_the_first_maximum(explorer_url):
    status, cell = request(explorer_url, "/api/explain",
                           {"image": np.zeros((28, 28)).tolist(), "layer": 1, "row": 2,
                            "col": 3, "channel": 0})  # fmt: skip
    assert status == 200 and cell["type"] == "MaxPool2D"
    window = np.array(cell["window"])
    assert cell["value"] == window.max()
    first = np.unravel_index(np.argmax(window), window.shape)  # ties: the first, row-major
    assert tuple(cell["winner"]) == tuple(int(i) for i in first)


def test_gradients_are_npcnns_backward_for_the_chosen_class(explorer_url):
    status, grads = request(explorer_url, "/api/gradients", {"image": DIGIT.tolist(), "label": 4})
    assert status == 200
    model = npcnn.seed_cnn(seed=3, kernels="ops")
    probs = model.forward(DIGIT[None, :, :, None])
    loss, cache = ops.sparse_categorical_crossentropy_forward(probs, np.array([4]))
    dx = model.backward(ops.sparse_categorical_crossentropy_backward(1.0, cache))
    assert grads["loss"] == pytest.approx(float(loss), rel=1e-5)
    np.testing.assert_allclose(unpacked(grads["input"]["maps"]), dx[0, :, :, 0].ravel(), atol=1e-6)
    kernel = np.moveaxis(model.grads[0][:, :, 0], -1, 0)  # conv1's dL/dw, a 5x5 map per filter
    np.testing.assert_allclose(unpacked(grads["kernel"]["maps"], (32, 5, 5)), kernel, atol=1e-6)
    assert len(grads["layers"]) == 8


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/predict", {"image": [[0.5] * 27] * 28}, "28x28"),
        ("/api/predict", {"image": (DIGIT * 2).tolist()}, r"\[0, 1\]"),
        ("/api/predict", {"image": "a digit"}, "nested list|28x28"),
        ("/api/predict", {}, "nested list|28x28"),
        ("/api/predict", [1, 2], "JSON object"),
        ("/api/explain", {"image": DIGIT.tolist(), "layer": 5, "row": 0, "col": 0, "channel": 0},
         "no feature maps"),
        ("/api/explain", {"image": DIGIT.tolist(), "layer": 0, "row": 28, "col": 0, "channel": 0},
         r"row must be an int in \[0, 28\)"),
        ("/api/explain", {"image": DIGIT.tolist(), "layer": True, "row": 0, "col": 0,
                          "channel": 0}, "layer must be an int"),
        ("/api/gradients", {"image": DIGIT.tolist(), "label": 10}, r"label must be an int"),
    ],
)  # fmt: skip
def test_a_bad_request_is_a_400_saying_why(explorer_url, path, body, message):
    import re

    status, answer = request(explorer_url, path, body)
    assert status == 400 and re.search(message, answer["error"]), answer
    assert request(explorer_url, "/api/model")[0] == 200  # still serving


def test_malformed_or_oversized_bodies_and_unknown_paths(explorer_url):
    assert request(explorer_url, "/api/predict", raw=b"{not json")[0] == 400
    status, answer = request(explorer_url, "/api/predict", raw=b"x" * (300 * 1024))
    assert status == 400 and "bytes" in answer["error"]
    assert request(explorer_url, "/../pyproject.toml")[0] == 404  # no path from the browser
    assert request(explorer_url, "/static/../server.py")[0] == 404
    assert request(explorer_url, "/api/shutdown", {})[0] == 404
    assert request(explorer_url, "/api/samples")[1]["samples"][0]["label"] == 7


def test_the_server_listens_on_the_loopback_address_only(explorer_url):
    assert explorer_url.startswith("http://127.0.0.1:")


def test_the_command_refuses_a_missing_model(tmp_path, capsys):
    from npcnn.cli import main

    assert main(["explore", str(tmp_path / "none.npz"), "--no-browser"]) == 2
    assert "no model file" in capsys.readouterr().err
