"""Deployment: a Keras model, converted and saved, predicts in a process without TensorFlow.

``tfcnn.to_npcnn(keras_model).save(path)`` where TensorFlow is; then, in a fresh
Python process where importing TensorFlow (or Keras) raises ``ImportError``,
``npcnn.load_model(path).predict(images)``. Its predictions must be Keras's
within the float32 bound the generated-architecture tests derive
(``test_generated_models.bounds``, README "Generated architectures"): the file
loses nothing, and the loaded model computes what the converted one does.

Checked for drawn architectures (``model_specs``) and for the guide's own
deployment path, run as written from ``docs/training.md`` (the block marked
``<!-- needs: tensorflow -->``, then ``serve.py`` in the clean process).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

import tfcnn  # noqa: E402
from parity_tests.strategies import ConvSpec, PoolSpec, model_specs  # noqa: E402
from parity_tests.test_generated_models import (  # noqa: E402
    batch,
    bounds,
    keras_layer_outputs,
    keras_model_or_reject,
    layer_list,
    rounding_counts,
)
from parity_tests.tolerances import assert_within  # noqa: E402
from tests.test_docs import parse_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Run first in the clean process: any later import of these frameworks fails.
NO_FRAMEWORKS = """
import importlib.abc, sys

class NoFrameworks(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "torch", "jax"):
            raise ImportError(f"{name} may not be imported in this process")
        return None

sys.meta_path.insert(0, NoFrameworks())
"""

PREDICT = """
import numpy as np
import npcnn

model = npcnn.load_model(sys.argv[1])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2], allow_pickle=False)))
"""

NOTHING_LOADED = """
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "torch", "jax"})
assert not loaded, loaded
"""


def run_without_frameworks(code: str, folder: Path, *args) -> None:
    """Run ``code`` in a fresh Python where TensorFlow, Keras, PyTorch and JAX cannot load."""
    script = folder / "no_frameworks.py"
    script.write_text(NO_FRAMEWORKS + code + NOTHING_LOADED, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def output_bound(keras_model, layers, images, head):
    """The derived float32 bound on |npcnn - Keras| of each output element."""
    tf_out = keras_model(images).numpy()
    counts = rounding_counts(layers, keras_layer_outputs(keras_model, images), len(images))
    labels = np.zeros(len(images), dtype=np.int64)
    spec = SimpleNamespace(head=head)
    weights = keras_model.get_weights()
    return tf_out, bounds(spec, layers, weights, images, labels, tf_out, counts, "float32")


def test_the_clean_process_cannot_import_tensorflow(tmp_path):
    with pytest.raises(AssertionError, match="may not be imported"):
        run_without_frameworks("import tensorflow\n", tmp_path)


@settings(max_examples=4, deadline=None)
@given(spec=model_specs())
def test_a_converted_model_predicts_what_keras_does_without_tensorflow(spec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("deploy")
    model = keras_model_or_reject(spec, "float32")
    images, _ = batch(spec, "float32")
    tfcnn.to_npcnn(model).save(folder / "model.npz")
    np.save(folder / "images.npy", images)
    run_without_frameworks(PREDICT, folder, "model.npz", "images.npy", "out.npy")
    tf_out, bound = output_bound(model, layer_list(spec), images, spec.head)
    assert_within(np.load(folder / "out.npy"), tf_out, bound["output"], "loaded model's output")


def spec_layers(keras_model):
    """The (kind, config) list of ``test_generated_models`` for a Sequential of the
    layers it draws (Conv2D, MaxPooling2D, Flatten, Dense)."""
    layers = []
    for layer in keras_model.layers:
        activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
        if isinstance(layer, keras.layers.Conv2D):
            layers.append(
                ("conv", ConvSpec(layer.filters, layer.kernel_size, layer.strides,
                                  layer.padding, activation))
            )  # fmt: skip
        elif isinstance(layer, keras.layers.MaxPooling2D):
            layers.append(("pool", PoolSpec(layer.pool_size, layer.strides, layer.padding)))
        elif isinstance(layer, keras.layers.Flatten):
            layers.append(("flat", "Flatten()"))
        else:
            layers.append(("dense", (layer.units, activation)))
    return layers


def test_the_guides_deployment_path_runs_as_written(tmp_path, monkeypatch):
    """docs/training.md: convert and save with TensorFlow, then serve.py without it."""
    monkeypatch.chdir(tmp_path)
    blocks = parse_blocks((ROOT / "docs" / "training.md").read_text(encoding="utf-8"))
    (convert,) = [b for b in blocks if b.needs == "tensorflow"]
    (serve,) = [b for b in blocks if b.file == "serve.py"]
    namespace = {"__name__": "guide"}
    exec(compile(convert.code, "docs/training.md", "exec"), namespace)  # noqa: S102
    run_without_frameworks(serve.code, tmp_path)
    keras_model = namespace["keras_model"]
    served = {"__name__": "serve"}
    exec(compile(serve.code, "serve.py", "exec"), served)  # noqa: S102 (the same inputs, here)
    x = served["x"]
    tf_out, bound = output_bound(keras_model, spec_layers(keras_model), x, "softmax")
    assert_within(np.load(tmp_path / "predictions.npy"), tf_out, bound["output"], "serve.py")


def test_a_nested_sequential_is_converted_in_line():
    L = keras.layers
    inner = keras.Sequential([L.Conv2D(3, 3, activation="relu"), L.ReLU()], name="features")
    model = keras.Sequential([keras.Input((6, 6, 2)), inner, L.Flatten(), L.Dense(2)])
    np_model = tfcnn.to_npcnn(model)
    assert [layer.name for layer in np_model.layers] == [
        layer.name for layer in [*inner.layers, *model.layers[1:]]
    ]
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(np_model.predict(x), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_nested_functional_model_is_refused_with_what_to_do():
    x = keras.Input((4,))
    inner = keras.Model(x, keras.layers.Dense(2)(x), name="block")
    model = keras.Sequential([keras.Input((4,)), inner])
    with pytest.raises(ValueError, match="'block' is a nested Functional model.*outer model"):
        tfcnn.to_npcnn(model)


def test_a_real_keras_file_is_named_with_the_line_that_converts_it(tmp_path):
    import npcnn

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match=r"a Keras model file \(\.keras\).*tfcnn\.to_npcnn"):
        npcnn.load_model(tmp_path / "model.keras")


def test_unnamed_layers_get_the_names_keras_gives_them():
    """Per class, the prefix Keras numbers: ``to_snake_case`` of the Keras class npcnn's
    class stands for (conv2d, max_pooling2d, re_lu, dense, ...), then _1, _2, ..."""
    from keras.src.utils.naming import to_snake_case

    import npcnn
    from npcnn.layers import LAYER_CLASSES, snake_case

    for cls in set(LAYER_CLASSES.values()):
        keras_class = getattr(keras.layers, cls.keras_class_name or cls.__name__)
        assert snake_case(cls.keras_class_name or cls.__name__) == to_snake_case(
            keras_class.__name__
        ), cls
    layers = [npcnn.Conv2D(2, 3), npcnn.Conv2D(2, 3), npcnn.MaxPool2D(), npcnn.ReLU()]
    keras_layers = [
        L(2, 3) if L is keras.layers.Conv2D else L()
        for L in (
            keras.layers.Conv2D,
            keras.layers.Conv2D,
            keras.layers.MaxPooling2D,
            keras.layers.ReLU,
        )
    ]
    theirs = [layer.name.rsplit("_", 1)[0] if layer.name[-1].isdigit() else layer.name
              for layer in keras_layers]  # fmt: skip
    assert [layer.name for layer in npcnn.Sequential(layers).layers] == [
        "conv2d", "conv2d_1", "max_pooling2d", "re_lu"
    ]  # fmt: skip
    assert theirs == ["conv2d", "conv2d", "max_pooling2d", "re_lu"]  # Keras: one counter each
