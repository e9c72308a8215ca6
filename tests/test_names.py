"""Layer names are keys: numbered as Keras numbers them, never shared, never lost.

A checkpoint stores one array per ``<layer>/<kernel|bias>``; two layers of one
name would keep one array of the two. So unnamed layers are numbered per Keras
class (``conv2d``, ``conv2d_1``, ...), a model refuses two layers of one name,
and the checkpoint writer and reader refuse a repeated name too.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from npcnn import Adam, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Reshape, Sequential, Softmax
from npcnn.checkpoint import load_checkpoint, save_checkpoint
from npcnn.train import NumpyLearner, TrainConfig, fit

from .helpers import seed_cnn_checkpoint


def test_unnamed_layers_are_numbered_as_keras_numbers_them():
    """What ``keras.layers.X()`` names them in a fresh Keras session (keras 3)."""
    model = Sequential(
        [
            Conv2D(2, 3, activation="relu"),
            MaxPool2D(),
            Conv2D(3, 3),
            MaxPool2D(),
            ReLU(),
            Reshape((-1,)),
            Flatten(),
            Dense(4),
            Dense(2),
            Softmax(),
        ],
        input_shape=(12, 12, 1),
    )
    assert [layer.name for layer in model.layers] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
        "max_pooling2d_1",
        "re_lu",
        "reshape",
        "flatten",
        "dense",
        "dense_1",
        "softmax",
    ]
    assert len(dict(model.named_params())) == 8


def test_numbering_skips_the_names_given():
    model = Sequential([Dense(2, name="dense"), Dense(2), Dense(2, name="dense_1"), Dense(2)])
    assert [layer.name for layer in model.layers] == ["dense", "dense_2", "dense_1", "dense_3"]


def test_a_layer_keeps_its_number_in_another_model():
    shared = Dense(2)
    first = Sequential([Dense(3), shared])
    Sequential([shared, Dense(4)])
    assert [layer.name for layer in first.layers] == ["dense", "dense_1"]


def test_a_model_refuses_two_layers_of_one_name():
    first, second = Dense(2, name="head"), Dense(3, name="head")
    with pytest.raises(ValueError, match="'head' occurs more than once"):
        Sequential([first, Dense(4), second])
    layer = Dense(2)
    with pytest.raises(ValueError, match=r"layers\[1\] \(dense\) is listed twice"):
        Sequential([layer, layer])


@pytest.mark.parametrize("name", ["", "a/b", 3])
def test_a_name_must_be_a_usable_key(name):
    with pytest.raises(ValueError, match="name must be"):
        Dense(2, name=name)


def test_the_checkpoint_writer_refuses_a_repeated_name(tmp_path):
    path = tmp_path / "ck.npz"
    weights = [("dense/kernel", np.zeros((2, 2))), ("dense/kernel", np.ones((2, 2)))]
    with pytest.raises(ValueError, match="'dense/kernel' occurs more than once"):
        save_checkpoint(path, weights, meta={"step": 0})
    assert not path.exists()


def test_the_checkpoint_reader_refuses_a_repeated_entry(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, [("dense/kernel", np.zeros((2, 2)))], meta={"step": 0})
    with zipfile.ZipFile(path) as archive:
        entry = archive.read("weight/dense/kernel.npy")
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as archive:
        archive.writestr("weight/dense/kernel.npy", entry)
    with pytest.raises(ValueError, match="occurs more than once"):
        load_checkpoint(path)


def test_the_tutorial_networks_checkpoints_still_load(tmp_path):
    seed_cnn_checkpoint(tmp_path / "ck.npz")
    names = set(load_checkpoint(tmp_path / "ck.npz")["weights"])
    assert names == {f"{layer}/{kind}" for layer in ("conv1", "conv2", "dense1", "dense2")
                     for kind in ("kernel", "bias")}  # fmt: skip


def _two_unnamed_convs():
    layers = [Conv2D(4, 3, activation="relu"), Conv2D(4, 3), Flatten(), Dense(3), Softmax()]
    return Sequential(layers, input_shape=(8, 8, 1), seed=0)


def test_two_unnamed_conv2d_save_and_resume_with_every_array(tmp_path):
    """Saved by fit, resumed by fit: every one of the 6 arrays comes back as saved."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, size=40)
    data = ((images, labels), (images[:10], labels[:10]))
    path = str(tmp_path / "ck.npz")
    trained = NumpyLearner(_two_unnamed_convs(), Adam(1e-2))
    config = TrainConfig(steps=3, batch_size=8, save=path)
    fit(trained, data, config, log=lambda line: None)
    assert len(load_checkpoint(path)["weights"]) == 6

    fresh = NumpyLearner(_two_unnamed_convs(), Adam(1e-2))
    fit(fresh, data, TrainConfig(steps=3, batch_size=8, resume=path), log=lambda line: None)
    for (name, w), (_, w_back) in zip(trained.named_params(), fresh.named_params()):
        np.testing.assert_array_equal(w_back, w, err_msg=name)
