"""What the explorer shows, computed by npcnn's own readable ops.

Every number the page draws comes from here, and every one is what
``npcnn/ops`` computes: the model runs on the readable tier
(``kernels="ops"``), layer by layer, so each layer keeps its input and cache.

- :func:`forward_outputs`: every layer's output for one image;
- :func:`explain_conv_cell`: one output value of a Conv2D, as the sum of the
  element-wise products of its window and kernel, plus the bias;
- :func:`explain_pool_cell`: one output of a MaxPool2D: its window and the
  first maximum (row-major), the cell its gradient goes to;
- :func:`class_gradients`: the gradient of one class's loss at every layer,
  through the layers' own backward functions.
"""

from __future__ import annotations

import inspect as pyinspect
from pathlib import Path

import numpy as np

from ..layers import Conv2D, MaxPool2D, Softmax
from ..ops import conv2d as conv2d_module
from ..ops import maxpool2d as maxpool2d_module
from ..ops.crossentropy import (
    sparse_categorical_crossentropy_backward,
    sparse_categorical_crossentropy_forward,
)
from ..ops.padding import padding_amounts


def forward_outputs(model, image):
    """[the input, layer 1's output, ...] for ``image`` (H, W, C), each without the batch axis."""
    x = image[None].astype(model.dtype)
    outputs = [x[0]]
    for layer in model.layers:
        x = layer.forward(x)
        outputs.append(x[0])
    return outputs


def source_line(module, marker):
    """{"file", "line", "text"} of the first line of ``module`` holding ``marker``."""
    path = Path(pyinspect.getsourcefile(module)).resolve()
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if marker in text:
            parts = path.parts[len(path.parts) - 1 - path.parts[::-1].index("npcnn") :]
            return {"file": "/".join(parts), "line": number, "text": text.strip()}
    raise LookupError(f"{marker!r} not in {module.__name__}")


def explain_conv_cell(layer, layer_input, row, col, channel):
    """Output (row, col, channel) of Conv2D ``layer`` on ``layer_input`` (H, W, Cin).

    Returns the window of the padded input (kh, kw, Cin) with a mask of the
    padded cells, the kernel slice, their products, the sum, the bias, the
    pre-activation ``z = sum + bias`` and the value after the activation.
    """
    kernel, bias = layer.params
    kh, kw, cin, _ = kernel.shape
    (sh, sw), (h, w) = layer.strides, layer_input.shape[:2]
    (top, bottom), (left, right) = padding_amounts((h, w), (kh, kw), layer.strides, layer.padding)
    x_pad = np.pad(layer_input, ((top, bottom), (left, right), (0, 0)))
    inside = np.pad(np.ones((h, w), dtype=bool), ((top, bottom), (left, right)))
    rows, cols = slice(row * sh, row * sh + kh), slice(col * sw, col * sw + kw)
    window, padded = x_pad[rows, cols, :], ~inside[rows, cols]
    k = kernel[:, :, :, channel]
    products = window * k  # y = sum over the window of x * w ...
    total = products.sum(dtype=np.float64)
    z = total + float(bias[channel])  # ... plus b
    value = max(z, 0.0) if layer.activation == "relu" else z
    return {
        "window": window.tolist(),
        "padded": padded.tolist(),
        "kernel": k.tolist(),
        "products": products.tolist(),
        "sum": total,
        "bias": float(bias[channel]),
        "z": z,
        "activation": layer.activation,
        "value": value,
        "code": source_line(conv2d_module, "y = cols @ w.reshape"),
    }


def explain_pool_cell(layer, layer_input, row, col, channel):
    """Output (row, col, channel) of MaxPool2D ``layer``: the window (padded cells
    None) and the first maximum in row-major order, where the gradient goes."""
    (ph, pw), (sh, sw), (h, w) = layer.pool_size, layer.strides, layer_input.shape[:2]
    (top, bottom), (left, right) = padding_amounts((h, w), (ph, pw), layer.strides, layer.padding)
    x_pad = np.pad(layer_input[:, :, channel], ((top, bottom), (left, right)),
                   constant_values=-np.inf)  # fmt: skip
    window = x_pad[row * sh : row * sh + ph, col * sw : col * sw + pw]
    first = int(np.argmax(window))  # argmax: the first maximum, row-major, as TF routes
    return {
        "window": [[None if np.isneginf(v) else float(v) for v in r] for r in window],
        "winner": [first // window.shape[1], first % window.shape[1]],
        "value": float(window.max()),
        "code": source_line(maxpool2d_module, "y = window_max("),
    }


def explain_cell(model, image, layer_index, row, col, channel):
    """The explanation of output (row, col, channel) of ``model.layers[layer_index]``."""
    layer = model.layers[layer_index]
    outputs = forward_outputs(model, image)
    layer_input, shape = outputs[layer_index], outputs[layer_index + 1].shape
    if len(shape) != 3 or not (0 <= row < shape[0] and 0 <= col < shape[1]
                               and 0 <= channel < shape[2]):  # fmt: skip
        raise ValueError(f"cell ({row}, {col}, {channel}) is outside {layer.name}'s output {shape}")
    if isinstance(layer, Conv2D):
        out = explain_conv_cell(layer, layer_input, row, col, channel)
    elif isinstance(layer, MaxPool2D):
        out = explain_pool_cell(layer, layer_input, row, col, channel)
    else:
        raise ValueError(f"{layer.name} is a {type(layer).__name__}: only Conv2D and MaxPool2D "
                         "cells are explained")  # fmt: skip
    return {"layer": layer.name, "type": type(layer).__name__, **out}


def class_gradients(model, image, label):
    """The gradient of ``label``'s cross-entropy loss at every layer's output and at
    the input (the saliency map), and the first Conv2D's kernel gradient.

    Returns {"loss", "input": dL/dx (H, W, C), "layers": [dL/d(output of layer i)],
    "kernel": dL/dw of the first Conv2D (kh, kw, Cin, Cout) or None}.
    """
    outputs = forward_outputs(model, image)
    probs = isinstance(model.layers[-1], Softmax) or getattr(model.layers[-1], "activation",
                                                            None) == "softmax"  # fmt: skip
    loss, cache = sparse_categorical_crossentropy_forward(
        outputs[-1][None], np.array([label]), from_logits=not probs
    )
    dy = sparse_categorical_crossentropy_backward(1.0, cache)
    per_layer = [None] * len(model.layers)
    for i in reversed(range(len(model.layers))):
        per_layer[i] = dy[0]
        dy = model.layers[i].backward(dy, need_dx=True)  # local derivative x upstream gradient
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    kernel = convs[0].grads[0] if convs else None
    return {"loss": float(loss), "input": dy[0], "layers": per_layer, "kernel": kernel}
