"""Layer names as Keras gives them: a prefix per class, numbered per model.

``Conv2D`` -> ``conv2d``, ``conv2d_1``, ...; ``MaxPooling2D`` -> ``max_pooling2d``.
Names are keys (parameters are stored by them), so one model never holds two.
"""

from __future__ import annotations

import re

from .validation import check_unique_names


def snake_case(class_name: str) -> str:
    """Keras's automatic layer-name prefix: 'Conv2D' -> 'conv2d', 'MaxPooling2D' ->
    'max_pooling2d', 'ReLU' -> 're_lu' (``keras.src.utils.naming.to_snake_case``)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def number_names(layers) -> None:
    """Give each unnamed layer of one model a name unique in it, numbered as Keras does.

    Per prefix, in order: ``conv2d``, ``conv2d_1``, ``conv2d_2``, ...; a name a
    layer was given (``name=``) is kept, and the numbering skips it. Two layers
    given the same name raise ``ValueError`` naming it, before any layer is
    renamed: parameters are stored by name, so a shared name would lose one.
    """
    given = [layer.name for layer in layers if not layer.auto_named]
    check_unique_names(given, "layer names")  # before any layer is renamed
    taken, counts = set(given), {}
    for layer in layers:
        if not layer.auto_named:
            continue
        prefix = snake_case(layer.keras_class_name or type(layer).__name__)
        while True:
            n = counts.get(prefix, 0)
            counts[prefix] = n + 1
            name = prefix if n == 0 else f"{prefix}_{n}"
            if name not in taken:
                break
        layer.name = name
        layer.auto_named = False  # the name stays, as Keras's: a layer reused elsewhere keeps it
        taken.add(name)
