"""Checkpoints: weights, optimizer state and RNG state in one ``.npz`` file, no pickle.

Layout of the archive (every entry a plain array, so ``np.load(path,
allow_pickle=False)`` reads it)::

    weight/<layer>/<kernel|bias>   the parameters, host NumPy arrays
    optimizer/iterations, optimizer/m_0, optimizer/v_0, ...
    rng                            the batch sampler's state, as a JSON string
    meta                           step, settings and history, as a JSON string
    model                          the architecture (``Sequential.get_config()``), as a
                                   JSON string; absent from files of older versions

A model file (``model.save``) is the same archive without optimizer and
sampler state; ``npcnn.load_model`` reads either. Names are keys: a writer
given two weights of one name, and a reader finding one twice, refuse.

Writes are atomic (``npcnn.atomicwrite``): the archive goes to a temporary file
in the same folder, is fsynced, gets the old file's permission mode (or the
umask's for a new file), then is renamed over the target and the folder fsynced,
so a crash or Ctrl-C in the middle never leaves a half-written checkpoint under
the real name. Only a regular file is ever replaced: a directory or device file
at the path is refused before anything is written; a symlink is followed and the
file it points to is replaced.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .atomicwrite import atomic_write
from .validation import check_unique_names

FORMAT_VERSION = 1
CONVERT_KERAS = (
    "convert it once, where TensorFlow is installed: "
    "tfcnn.to_npcnn(keras.models.load_model(path)).save('model.npz')"
)


def save_checkpoint(
    path, named_weights, optimizer_state=None, rng_state=None, meta=None, architecture=None
):
    """Write a checkpoint atomically (see ``npcnn.atomicwrite.atomic_write``).

    Args:
        path: target file (``.npz`` is appended by nothing: the name is used as given).
        named_weights: [(name, array)] e.g. ``model.named_params()``.
        optimizer_state: dict of arrays from ``optimizer.get_state()``.
        rng_state: ``rng.bit_generator.state`` (a dict).
        meta: a JSON-serialisable dict (step, settings, history).
        architecture: a JSON-serialisable dict, ``Sequential.get_config()``.

    Raises ``NotARegularFileError`` (an ``OSError``) if ``path`` is a directory,
    device file or FIFO, and ``ValueError`` if two weights share a name;
    nothing is written then.
    """
    path = Path(path)
    named_weights = list(named_weights)
    check_unique_names([name for name, _ in named_weights], "weight names")
    arrays = {f"weight/{name}": np.asarray(w) for name, w in named_weights}
    for key, value in (optimizer_state or {}).items():
        arrays[f"optimizer/{key}"] = np.asarray(value)
    arrays["rng"] = np.array(json.dumps(rng_state))
    arrays["meta"] = np.array(json.dumps({"format": FORMAT_VERSION, **(meta or {})}))
    if architecture is not None:
        arrays["model"] = np.array(json.dumps(architecture))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _not_an_archive(path) -> ValueError | None:
    """The error for a file that is not an .npz archive (or is a Keras file), else None."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return ValueError(
            f"{path} is a single NumPy array (.npy), not an npcnn model file or checkpoint "
            "(an .npz written by model.save(path) or npcnn train --save)"
        )
    if head.startswith(b"\x89HDF"):
        return ValueError(f"{path} is an HDF5 file (a Keras .h5 model?); {CONVERT_KERAS}")
    if not zipfile.is_zipfile(path) and head.startswith(b"PK"):
        return ValueError(f"{path} is not a readable npcnn checkpoint (a damaged or cut .npz)")
    if not zipfile.is_zipfile(path):
        return ValueError(
            f"{path} is not an npcnn model file or checkpoint: it is not an .npz archive "
            "(write one with model.save(path) or npcnn train --save)"
        )
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if "config.json" in names or "model.weights.h5" in names:
        return ValueError(f"{path} is a Keras model file (.keras); {CONVERT_KERAS}")
    check_unique_names(names, f"{path}: the archive's entry names")
    return None


def load_checkpoint(path) -> dict:
    """Read a checkpoint or model file; returns {"weights": {name: array},
    "optimizer": {...}, "rng": dict or None, "meta": dict, "architecture": dict
    or None}. Raises ``ValueError`` for a file that is not one, saying what it is
    (a .npy array, a Keras file, text...) where it can tell."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        problem = _not_an_archive(path)
        if problem is None:
            with np.load(path, allow_pickle=False) as archive:
                entries = {key: archive[key] for key in archive.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError...
        raise ValueError(f"{path} is not a readable npcnn checkpoint ({exc})") from exc
    if problem is not None:
        raise problem
    if "meta" not in entries:
        held = ", ".join(sorted(entries)[:5]) or "nothing"
        raise ValueError(
            f"{path} is an .npz archive but not an npcnn checkpoint: it has no 'meta' entry "
            f"(it holds {held}); an npcnn model file is written by model.save(path)"
        )
    try:
        out = {"weights": {}, "optimizer": {}, "rng": json.loads(str(entries.pop("rng", "null")))}
        out["meta"] = json.loads(str(entries.pop("meta")))
        out["architecture"] = json.loads(str(entries.pop("model", "null")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a readable npcnn checkpoint ({exc})") from None
    for key, value in entries.items():
        group, _, name = key.partition("/")
        if group in ("weight", "optimizer"):
            out["weights" if group == "weight" else "optimizer"][name] = value
    return out


def weights_for(model_names, checkpoint_weights, path="checkpoint") -> list:
    """Pick the checkpoint's weights in the model's order, or explain what does not fit.

    Args:
        model_names: [(name, shape)] of the model's parameters, e.g. conv1/kernel.
        checkpoint_weights: {name: array} from :func:`load_checkpoint`.
    """
    missing = [n for n, _ in model_names if n not in checkpoint_weights]
    if missing:
        raise ValueError(
            f"{path} does not fit this model: no weights for {', '.join(missing)} "
            f"(it holds {', '.join(checkpoint_weights) or 'none'})"
        )
    extra = sorted(set(checkpoint_weights) - {n for n, _ in model_names})
    if extra:
        raise ValueError(f"{path} does not fit this model: unknown weights {', '.join(extra)}")
    out = []
    for name, shape in model_names:
        w = checkpoint_weights[name]
        if tuple(w.shape) != tuple(shape):
            layer, _, kind = name.partition("/")
            raise ValueError(
                f"{path} does not fit this model: layer {layer} {kind} has shape "
                f"{tuple(w.shape)} in the checkpoint but {tuple(shape)} in the model"
            )
        out.append(w)
    return out


def training_meta(ckpt, path="checkpoint") -> dict:
    """The checkpoint's meta, checked to hold what resuming needs (``ValueError`` if not)."""
    meta = ckpt["meta"]
    ok = (
        isinstance(meta, dict)
        and isinstance(meta.get("step"), int)
        and meta["step"] >= 0
        and isinstance(meta.get("history"), dict)
        and isinstance(meta["history"].get("loss"), list)
        and isinstance(meta["history"].get("eval"), list)
        and isinstance(meta.get("config"), dict)
    )
    if not ok:
        raise ValueError(
            f"{path} cannot be resumed: it is not a training checkpoint "
            "(no step, history or config; `npcnn evaluate --weights` may still read it)"
        )
    return meta
