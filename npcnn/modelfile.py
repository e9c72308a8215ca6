"""Model files: a whole model -- architecture and weights -- in one ``.npz``, read with NumPy alone.

``model.save(path)`` writes it (``npcnn/model.py``); :func:`load_model` reads it::

    model = npcnn.load_model("model.npz")      # no TensorFlow, no pickle
    probs = model.predict(images)

The file is a checkpoint (``npcnn/checkpoint.py``) whose ``model`` entry holds
the architecture as JSON, Keras's ``get_config`` style::

    {"input_shape": [28, 28, 1], "dtype": "float32",
     "layers": [{"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 32, ...}}, ...]}

A layer is rebuilt as ``LAYER_CLASSES[class_name](**config)``: only the
classes registered in ``npcnn.layers`` (``register_layer``), never code named by
the file. Training checkpoints carry the same entry, so ``load_model`` reads
them too, and resuming checks that the checkpoint's architecture is the model's.
"""

from __future__ import annotations

from . import more_layers  # noqa: F401 (registers its layers in LAYER_CLASSES)
from .checkpoint import load_checkpoint, weights_for
from .layers import LAYER_CLASSES
from .model import Sequential, seed_cnn


def layer_from_config(entry, where="model file"):
    """One layer from ``{"class_name": ..., "config": {...}}``; ``ValueError`` naming it if not."""
    if not (isinstance(entry, dict) and isinstance(entry.get("config"), dict)):
        raise ValueError(f"{where}: a layer entry must be {{class_name, config}}, got {entry!r}")
    name = entry.get("class_name")
    if name not in LAYER_CLASSES:
        raise ValueError(
            f"{where}: unknown layer class {name!r} (npcnn has {', '.join(sorted(LAYER_CLASSES))})"
        )
    try:
        return LAYER_CLASSES[name](**entry["config"])
    except (TypeError, ValueError) as exc:  # an argument it does not take, or a bad value
        raise ValueError(
            f"{where}: cannot rebuild a {name} from {entry['config']} ({exc})"
        ) from None


def model_from_config(config, kernels="fast", dtype=None, where="model file") -> Sequential:
    """A built ``Sequential`` (fresh weights) from :meth:`Sequential.get_config`'s dict.

    ``dtype`` overrides the saved one ('float32' or 'float64'); ``kernels`` picks
    the tier, as in ``Sequential``.
    """
    if not (isinstance(config, dict) and isinstance(config.get("layers"), list)):
        raise ValueError(f"{where}: the architecture must be a dict with a 'layers' list")
    layers = [layer_from_config(entry, where) for entry in config["layers"]]
    return Sequential(
        layers,
        input_shape=config.get("input_shape"),
        dtype=dtype or config.get("dtype", "float32"),
        kernels=kernels,
    )


def model_from_checkpoint(ckpt, path, kernels="fast", dtype=None) -> Sequential:
    """The model a loaded checkpoint holds, its weights set (all or nothing).

    A file without an architecture (written by an older npcnn or by a script
    with ``save_checkpoint``) is read as the tutorial's network, the only one
    such files could hold for ``npcnn evaluate``.
    """
    if ckpt["architecture"] is None:
        model = seed_cnn(dtype=dtype or "float32", kernels=kernels)
    else:
        model = model_from_config(ckpt["architecture"], kernels, dtype, where=str(path))
    if not model.built:
        raise ValueError(f"{path}: the model in it has no input_shape, so it cannot be built")
    names = [(name, p.shape) for name, p in model.named_weights()]
    try:
        weights = weights_for(names, ckpt["weights"], path)
    except ValueError as exc:
        if ckpt["architecture"] is not None:
            raise
        raise ValueError(
            f"{exc}. It holds weights but no architecture, so it was read as the tutorial's "
            "network: build your model in Python and load them with model.set_weights"
        ) from None
    model.set_weights(weights)
    return model


def load_model(path, kernels="fast", dtype=None) -> Sequential:
    """Read a model file (``model.save``) or a training checkpoint: the model, with its weights.

    Args:
        path: the ``.npz`` file.
        kernels: 'fast' (default) or 'ops', as in ``Sequential``.
        dtype: None (the saved dtype), 'float32' or 'float64'.
    Raises ``ValueError`` for a file that is not one, saying what it is.
    """
    return model_from_checkpoint(load_checkpoint(path), path, kernels, dtype)


def check_architecture(saved, config, path) -> None:
    """Raise ``ValueError`` unless the architecture ``saved`` in checkpoint ``path`` (or
    None: a file without one) has the layers and input shape of ``config``."""
    if saved is None:
        return
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: its architecture is not a dict but {type(saved).__name__}")
    if config.get("input_shape") is None:
        raise ValueError(f"build the model (give input_shape) before resuming from {path}")
    hint = f"resume with the model that wrote it (npcnn.load_model({str(path)!r}) rebuilds it)"
    if saved.get("input_shape") != config.get("input_shape"):
        raise ValueError(
            f"{path} holds another model: input shape {saved.get('input_shape')} in the "
            f"checkpoint, {config.get('input_shape')} in this model; {hint}"
        )
    ours, theirs = config.get("layers", []), [_as_now(e) for e in saved.get("layers", [])]
    for i, (mine, other) in enumerate(zip(ours, theirs)):
        if mine != other:
            raise ValueError(
                f"{path} holds another model: layer {i} is {_layer_text(other)} in the "
                f"checkpoint, {_layer_text(mine)} in this model; {hint}"
            )
    if len(ours) != len(theirs):
        raise ValueError(
            f"{path} holds another model: {len(theirs)} layers in the checkpoint, "
            f"{len(ours)} in this model; {hint}"
        )


def _as_now(entry):
    """A saved layer entry as this npcnn writes it (arguments added since get their
    defaults), or the entry itself if it names no layer npcnn can rebuild."""
    try:
        layer = layer_from_config(entry)
    except ValueError:
        return entry
    return {"class_name": entry["class_name"], "config": layer.get_config()}


def _layer_text(entry) -> str:
    """'Conv2D(name=conv2d, filters=8, ...)' for a layer entry of an architecture."""
    if not isinstance(entry, dict):
        return repr(entry)
    args = ", ".join(f"{k}={v}" for k, v in (entry.get("config") or {}).items())
    return f"{entry.get('class_name')}({args})"
