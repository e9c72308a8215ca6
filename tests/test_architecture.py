"""The package's architecture, checked: each module imports only what lies below it.

The layers, bottom first (a module may import its own package and the names on its
line of ``LAYERS``, every one of them on a lower row; nothing points up):

0. ``backend``, ``validation``, ``atomicwrite``, ``bars``, ``initializers``:
   import nothing of npcnn; ``names`` (Keras's layer names) on validation.
1. ``ops`` (the readable reference) on backend and validation; ``datasets`` on
   atomicwrite and bars; ``checkpoint`` on atomicwrite and validation.
2. ``naive`` (the loops) on validation and ``ops.padding`` only, standing alone;
   ``fast`` on backend, validation and the ops it re-uses; ``gradcheck`` on ops.
3. ``layers`` on the tiers and initializers; ``check`` (the learner tool) on the tiers
   and atomicwrite.
   ``more_layers`` (batch norm, dropout, average pooling) on the layers.
4. ``model`` and ``optimizers`` on the layers (``model.save`` on checkpoints).
5. ``modelfile`` (``load_model``) on the model; ``inputs`` (images in, accuracy out)
   on the layers; ``schedules`` (learning rates by step) on the optimizers' checks.
6. ``train`` on the model, optimizers and checkpoints; ``worker`` (a worker process
   of the fast tier) on the model files and the fast tier.
7. ``plots`` on train and the ops.
8. the front doors: ``cli``, the package root ``__init__`` and ``data`` (where
   ``from npcnn.data import load_mnist`` keeps working);
9. ``__main__`` (``python -m npcnn``) on cli.

So datasets never import the model, layers or training; ops never import a layer;
layers and models never import training or the command line. The tiers keep to
their roles too: the readable ops carry no speed machinery, the fast tier offers
every op of the readable one, and no module is longer than a reader can hold.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import npcnn
from npcnn import fast, ops

PACKAGE = Path(npcnn.__file__).parent

LAYERS = [  # bottom first: {module or subpackage: what of npcnn it may import}
    {"backend": (), "validation": (), "atomicwrite": (), "bars": (), "initializers": ()},
    {
        "ops": ("backend", "validation"),
        "datasets": ("atomicwrite", "bars", "validation"),
        "checkpoint": ("atomicwrite", "validation"),
        "curves": ("validation",),
        "names": ("validation",),
    },
    {
        "naive": ("validation", "ops.padding"),
        "fast": ("backend", "validation", "ops"),
        "gradcheck": ("ops",),
    },
    {
        "layers": ("backend", "validation", "initializers", "names", "ops", "fast"),
        "check": ("backend", "validation", "atomicwrite", "ops", "naive", "fast", "gradcheck"),
    },
    {"more_layers": ("validation", "ops", "layers")},
    {
        "model": (
            *("backend", "validation", "initializers", "names", "ops", "fast", "layers"),
            "checkpoint",
        ),
        "optimizers": ("backend", "validation", "ops", "fast", "layers"),
    },
    {
        "modelfile": ("validation", "checkpoint", "layers", "more_layers", "model"),
        "inputs": ("layers",),
        "zoo": ("layers", "more_layers", "model"),
        "schedules": ("validation", "optimizers"),
    },
    {
        "train": (
            *("backend", "validation", "bars", "atomicwrite", "checkpoint", "curves", "datasets"),
            *("ops", "fast", "layers", "more_layers", "model", "optimizers", "modelfile"),
            *("inputs", "zoo", "schedules"),
        ),
        "worker": ("fast", "model", "modelfile"),
    },
    {
        "plots": ("backend", "ops", "fast", "layers", "model", "train"),
        "explore": ("validation", "ops", "layers", "modelfile", "datasets", "train"),
    },
    {
        "cli": (
            *("backend", "validation", "bars", "atomicwrite", "checkpoint", "datasets"),
            *("modelfile", "inputs", "zoo", "schedules"),
            *("ops", "fast", "naive", "check", "layers", "model", "optimizers", "train", "plots"),
            "explore",
        ),
        "data": ("datasets",),
        "__init__": (
            *("backend", "validation", "initializers", "gradcheck", "ops", "naive", "fast"),
            *("check", "layers", "more_layers", "model", "optimizers", "modelfile"),
            "schedules",
        ),
    },
    {"__main__": ("cli",)},
]
ROW = {name: row for row, layer in enumerate(LAYERS) for name in layer}
MAY_IMPORT = {name: allowed for layer in LAYERS for name, allowed in layer.items()}


def group(module: str) -> str:
    """npcnn.ops.conv2d -> ops; npcnn.train -> train; npcnn -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    where = PACKAGE.parent.joinpath(*name.split("."))
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def npcnn_imports(path: Path):
    """(line, module) for every import of npcnn in a file, at the top or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "npcnn":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = ".".join(filter(None, [base, node.module]))
            else:
                base = node.module or ""
            if base.split(".")[0] != "npcnn":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if is_module(sub) else base


def allowed(importer: str, target: str) -> bool:
    if group(target) == group(importer):
        return True
    rest = target.removeprefix("npcnn.")
    return any(rest == a or rest.startswith(a + ".") for a in MAY_IMPORT[group(importer)])


def test_the_layers_point_only_down():
    """The table itself: whatever a row may import lies on a lower row."""
    for name, may in MAY_IMPORT.items():
        for target in may:
            below = target.split(".")[0]
            assert ROW[below] < ROW[name], f"{name} (row {ROW[name]}) -> {below} (row {ROW[below]})"


def test_every_module_has_a_place_in_the_layers():
    unplaced = {group(module_name(p)) for p in PACKAGE.rglob("*.py")} - set(MAY_IMPORT)
    assert not unplaced, f"add these to LAYERS in {Path(__file__).name}: {sorted(unplaced)}"


def test_no_import_points_up():
    arrows = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, target in npcnn_imports(path)
        if not allowed(module_name(path), target)
    ]
    assert not arrows, "\n".join(arrows)


def test_the_layering_check_sees_an_arrow_up(tmp_path, monkeypatch):
    """The check itself: an op importing a layer, or the loops importing the fast
    tier, is caught, in a function body as much as at the top."""
    fake = tmp_path / "npcnn"
    (fake / "ops").mkdir(parents=True)
    (fake / "naive").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "layers.py").write_text("")
    (fake / "ops" / "__init__.py").write_text("")
    (fake / "ops" / "padding.py").write_text("")
    (fake / "ops" / "relu.py").write_text("def f():\n    from ..layers import Dense\n")
    (fake / "naive" / "__init__.py").write_text("from ..ops import padding\nimport npcnn.fast\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    found = {
        (module_name(p), target)
        for p in fake.rglob("*.py")
        for _, target in npcnn_imports(p)
        if not allowed(module_name(p), target)
    }
    assert found == {("npcnn.ops.relu", "npcnn.layers"), ("npcnn.naive", "npcnn.fast")}


def test_the_readable_ops_carry_no_speed_machinery():
    """No slabs, scratch buffers, chunks or ``out=`` plumbing in npcnn/ops (comments aside)."""
    speed_words = re.compile(r"\bSLAB\b|buffer|chunk|\bout=|flags\.c_contiguous")
    for path in Path(ops.__file__).parent.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not speed_words.search(code), f"{path.name}:{number}: {line.strip()}"


def test_the_fast_tier_has_every_op_with_the_same_signature():
    for name in ops.__all__:
        readable, quick = getattr(ops, name), getattr(fast, name)
        assert inspect.signature(readable) == inspect.signature(quick), name
    assert npcnn.fast is fast


def test_no_npcnn_module_over_400_lines():
    """A module a reader can hold in their head: none is over 400 lines."""
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long
