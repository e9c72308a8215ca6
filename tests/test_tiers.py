"""The three tiers keep to their roles: the loops stand alone, the readable ops
carry no speed machinery, and the fast tier offers every op of the readable one."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import npcnn
from npcnn import fast, naive, ops


def test_the_loops_stand_alone():
    """npcnn/naive is the oracle: it may share padding arithmetic and argument
    checks with npcnn/ops, but must never import another tier's code."""
    shared = {"validation", "ops.padding", "npcnn.validation", "npcnn.ops.padding"}
    folder = Path(naive.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("npcnn") for a in node.names), path.name
            if not isinstance(node, ast.ImportFrom):
                continue
            module, names = node.module or "", [alias.name for alias in node.names]
            if node.level == 1:  # inside npcnn/naive itself
                assert (folder / f"{module}.py").exists(), f"{path.name}: .{module}"
            elif node.level >= 2 or module.startswith("npcnn"):
                assert module in shared, f"{path.name} imports {names} from {module}"


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
    package = Path(npcnn.__file__).parent
    long = {
        str(path.relative_to(package)): n
        for path in package.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert not long, long
