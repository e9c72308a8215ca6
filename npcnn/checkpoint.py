"""Checkpoints: weights, optimizer state and RNG state in one ``.npz`` file, no pickle.

Layout of the archive (every entry a plain array, so ``np.load(path,
allow_pickle=False)`` reads it)::

    weight/<layer>/<kernel|bias>   the parameters, host NumPy arrays
    optimizer/iterations, optimizer/m_0, optimizer/v_0, ...
    rng                            the batch sampler's state, as a JSON string
    meta                           step, settings and history, as a JSON string

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
from pathlib import Path

import numpy as np

from .atomicwrite import atomic_write

FORMAT_VERSION = 1


def save_checkpoint(path, named_weights, optimizer_state=None, rng_state=None, meta=None):
    """Write a checkpoint atomically (see ``npcnn.atomicwrite.atomic_write``).

    Args:
        path: target file (``.npz`` is appended by nothing: the name is used as given).
        named_weights: [(name, array)] e.g. ``model.named_params()``.
        optimizer_state: dict of arrays from ``optimizer.get_state()``.
        rng_state: ``rng.bit_generator.state`` (a dict).
        meta: a JSON-serialisable dict (step, settings, history).

    Raises ``NotARegularFileError`` (an ``OSError``) if ``path`` is a directory,
    device file or FIFO; nothing is written then.
    """
    path = Path(path)
    arrays = {f"weight/{name}": np.asarray(w) for name, w in named_weights}
    for key, value in (optimizer_state or {}).items():
        arrays[f"optimizer/{key}"] = np.asarray(value)
    arrays["rng"] = np.array(json.dumps(rng_state))
    arrays["meta"] = np.array(json.dumps({"format": FORMAT_VERSION, **(meta or {})}))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path) -> dict:
    """Read a checkpoint; returns {"weights": {name: array}, "optimizer": {...},
    "rng": dict or None, "meta": dict}. Raises ``ValueError`` for a file that is
    not an npcnn checkpoint."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {key: archive[key] for key in archive.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError...
        raise ValueError(f"{path} is not a readable npcnn checkpoint ({exc})") from exc
    if "meta" not in entries:
        raise ValueError(f"{path} is not an npcnn checkpoint: it has no 'meta' entry")
    out = {"weights": {}, "optimizer": {}, "rng": json.loads(str(entries.pop("rng", "null")))}
    out["meta"] = json.loads(str(entries.pop("meta")))
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
