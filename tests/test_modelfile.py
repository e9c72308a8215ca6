"""Model files: ``model.save`` / ``npcnn.load_model`` keep the whole model, as data.

The architecture is JSON (``get_config`` per layer) inside the ``.npz``, read
with ``allow_pickle=False``; layers are rebuilt only from the registered
classes; a training checkpoint carries the architecture too, and resuming into
another model is refused before anything changes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import npcnn
from npcnn import Adam, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Reshape, Sequential, Softmax
from npcnn.layers import LAYER_CLASSES, Layer, register_layer
from npcnn.train import NumpyLearner, TrainConfig, fit


def every_layer_model(dtype="float32"):
    return Sequential(
        [
            Conv2D(3, (3, 2), strides=(1, 2), padding="same", activation="relu"),
            MaxPool2D(2, strides=1, padding="same"),
            Conv2D(4, 3),
            ReLU(),
            MaxPool2D(),
            Reshape((-1,)),
            Dense(5, activation="relu", name="hidden"),
            Dense(3),
            Softmax(),
        ],
        input_shape=(9, 10, 2),
        seed=3,
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_give_the_same_model(tmp_path, dtype):
    model = every_layer_model(dtype)
    model.save(tmp_path / "model.npz")
    again = npcnn.load_model(tmp_path / "model.npz")
    assert again.get_config() == model.get_config()
    assert again.dtype == model.dtype and again.input_shape == model.input_shape
    for (name, w), (name_again, w_again) in zip(model.named_params(), again.named_params()):
        assert name == name_again
        np.testing.assert_array_equal(w_again, w)
    x = np.random.default_rng(0).random((5, 9, 10, 2)).astype(dtype)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    flat = npcnn.load_model(tmp_path / "model.npz", kernels="ops", dtype="float64")
    assert flat.kernels == "ops" and flat.dtype == np.float64


def test_the_file_holds_data_only(tmp_path):
    """Plain arrays and a JSON architecture: NumPy reads it with pickle off."""
    Sequential([Flatten(), Dense(2)], input_shape=(2, 2)).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert all(archive[key].dtype != object for key in archive.files)
        architecture = json.loads(str(archive["model"]))
    assert architecture["layers"][1] == {
        "class_name": "Dense",
        "config": {
            "name": "dense",
            "activation": None,
            "use_bias": True,
            "kernel_initializer": "glorot_uniform",
            "units": 2,
        },
    }


def test_an_unbuilt_model_is_not_saved(tmp_path):
    with pytest.raises(ValueError, match="build the model"):
        Sequential([Dense(2)]).save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    Sequential([Dense(2)], input_shape=(3,)).save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        Sequential([Dense(4)], input_shape=(3,)).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def _rewrite_architecture(path, change):
    with np.load(path, allow_pickle=False) as archive:
        entries = {key: archive[key] for key in archive.files}
    architecture = json.loads(str(entries["model"]))
    change(architecture)
    entries["model"] = np.array(json.dumps(architecture))
    np.savez(path, **entries)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a["layers"][0].update(class_name="os.system"),
            "unknown layer class 'os.system'",
        ),
        (lambda a: a["layers"][0]["config"].update(units=2), "cannot rebuild a Conv2D"),
        (lambda a: a["layers"][0]["config"].update(filters=-1), "filters"),
        (lambda a: a.update(layers="conv"), "'layers' list"),
        (lambda a: a["layers"].append(3), "a layer entry must be"),
    ],
)
def test_a_bad_architecture_is_a_value_error_naming_it(tmp_path, change, message):
    path = tmp_path / "m.npz"
    every_layer_model().save(path)
    _rewrite_architecture(path, change)
    with pytest.raises(ValueError, match=message):
        npcnn.load_model(path)


def test_a_registered_layer_class_slots_in(tmp_path, monkeypatch):
    """The registry is how new layers join model files: register, save, load."""
    monkeypatch.setattr("npcnn.layers.LAYER_CLASSES", dict(LAYER_CLASSES))

    class Double(Layer):
        def __init__(self, factor=2.0, name=None):
            super().__init__(name)
            self.factor = factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

        def forward(self, x):
            return x * x.dtype.type(self.factor)

    monkeypatch.setattr("npcnn.modelfile.LAYER_CLASSES", npcnn.layers.LAYER_CLASSES)
    register_layer(Double)
    model = Sequential([Double(3.0), Dense(2)], input_shape=(2,), seed=0)
    assert model.layers[0].name == "double"
    model.save(tmp_path / "m.npz")
    again = npcnn.load_model(tmp_path / "m.npz")
    assert isinstance(again.layers[0], Double) and again.layers[0].factor == 3.0
    x = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def _data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, size=30)
    return (images, labels), (images[:6], labels[:6])


def _small(filters=4, name=None):
    layers = [Conv2D(filters, 3, activation="relu", name=name), Flatten(), Dense(3), Softmax()]
    return Sequential(layers, input_shape=(8, 8, 1), seed=0)


def test_a_training_checkpoint_loads_as_a_model(tmp_path):
    path = str(tmp_path / "ck.npz")
    learner = NumpyLearner(_small(), Adam())
    fit(learner, _data(), TrainConfig(steps=2, batch_size=5, save=path), log=lambda line: None)
    model = npcnn.load_model(path)
    x = np.random.default_rng(1).random((3, 8, 8, 1), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x), learner.model.predict(x))


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: _small(filters=4, name="conv"), r"layer 0 is Conv2D\(name=conv2d"),
        (lambda: Sequential([Conv2D(4, 3), Flatten(), Dense(3)], input_shape=(8, 8, 1)), "layer"),
        (lambda: Sequential([Flatten(), Dense(3)], input_shape=(8, 8, 1)), "layer 0"),
    ],
)
def test_resuming_into_another_model_is_refused_before_anything_changes(tmp_path, other, message):
    """Same weight names and shapes or not: another architecture is a clear refusal."""
    path = str(tmp_path / "ck.npz")
    fit(
        NumpyLearner(_small(), Adam()),
        _data(),
        TrainConfig(steps=2, batch_size=5, save=path),
        log=lambda line: None,
    )
    learner = NumpyLearner(other(), Adam())
    before = learner.model.get_weights()
    with pytest.raises(ValueError, match=f"holds another model: {message}"):
        fit(learner, _data(), TrainConfig(steps=4, resume=path), log=lambda line: None)
    for w, w_before in zip(learner.model.get_weights(), before):
        np.testing.assert_array_equal(w, w_before)
    assert learner.optimizer.iterations == 0


def test_weights_without_an_architecture_say_how_to_load_them(tmp_path):
    from npcnn.checkpoint import save_checkpoint

    model = _small()
    save_checkpoint(tmp_path / "old.npz", model.named_params(), meta={"step": 0})
    with pytest.raises(ValueError, match="no architecture.*model.set_weights"):
        npcnn.load_model(tmp_path / "old.npz")


def test_an_unbuilt_model_trains_saves_its_shape_and_resumes_only_once_built(tmp_path):
    path = str(tmp_path / "ck.npz")
    unbuilt = Sequential([Conv2D(4, 3, activation="relu"), Flatten(), Dense(3), Softmax()])
    fit(NumpyLearner(unbuilt, Adam()), _data(), TrainConfig(steps=2, batch_size=5, save=path),
        log=lambda line: None)  # fmt: skip
    assert npcnn.load_model(path).input_shape == (8, 8, 1)
    again = Sequential([Conv2D(4, 3, activation="relu"), Flatten(), Dense(3), Softmax()])
    with pytest.raises(ValueError, match="build the model"):
        fit(NumpyLearner(again, Adam()), _data(), TrainConfig(steps=4, resume=path),
            log=lambda line: None)  # fmt: skip


def test_a_checkpoint_without_the_newer_arguments_still_matches():
    """An architecture saved before Dense took use_bias and kernel_initializer is
    read with their defaults: resuming from it is allowed."""
    from npcnn.modelfile import check_architecture

    model = Sequential([Flatten(), Dense(2)], input_shape=(2, 2))
    saved = model.get_config()
    for key in ("use_bias", "kernel_initializer"):
        del saved["layers"][1]["config"][key]
    check_architecture(saved, model.get_config(), "old.npz")
    saved["layers"][1]["config"]["units"] = 3
    with pytest.raises(ValueError, match="another model"):
        check_architecture(saved, model.get_config(), "old.npz")
