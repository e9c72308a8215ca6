"""``npcnn exercise``: the stub file and the notebook made from the same source.

The notebook is executed here the way Jupyter would run it: its code cells in
order, in one namespace (nbformat and nbclient are not needed for that).
"""

from __future__ import annotations

import ast
import json

import pytest
from learner_mistakes import GOOD

from npcnn.check import OPS, exercise_notebook, exercise_source
from npcnn.check.exercises import DOCS
from npcnn.cli import main


def test_every_op_has_its_docstrings():
    assert set(DOCS) == {op.name for op in OPS}


@pytest.mark.parametrize("op", [op.name for op in OPS])
def test_the_stub_has_the_signatures_docstrings_and_raises(op, tmp_path, capsys):
    path = tmp_path / f"my_{op}.py"
    assert main(["exercise", op, "--out", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    spec = next(s for s in OPS if s.name == op)
    assert set(functions) == {spec.forward, spec.backward}
    forward = functions[spec.forward]
    assert [a.arg for a in forward.args.args] == list(spec.forward_args)
    assert [a.arg for a in functions[spec.backward].args.args] == [spec.upstream, "cache"]
    for f in functions.values():
        doc = ast.get_docstring(f)
        assert doc and ("(N" in doc or "shape" in doc), f.name
        assert isinstance(f.body[-1], ast.Raise), f.name
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102
    with pytest.raises(NotImplementedError):
        namespace[spec.forward](*([None] * spec.required))


def test_exercise_refuses_to_overwrite_unless_forced(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("my work\n")
    assert main(["exercise", "conv2d", "--out", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == "my work\n"
    assert main(["exercise", "conv2d", "--out", str(path), "--force"]) == 0
    assert "def conv2d_forward" in path.read_text()
    assert main(["exercise", "conv2d", "--out", str(tmp_path)]) == 2  # a directory
    assert main(["exercise", "nosuchop", "--out", str(tmp_path / "x.py")]) == 2
    assert "unknown op 'nosuchop'" in capsys.readouterr().err


def test_exercise_all_and_default_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["exercise", "relu"]) == 0 and (tmp_path / "my_relu.py").is_file()
    assert main(["exercise", "all"]) == 0
    text = (tmp_path / "my_ops.py").read_text()
    assert all(f"def {op.forward}(" in text for op in OPS)


def run_notebook(notebook: dict) -> str:
    """Run the code cells in order in one namespace; what they printed."""
    import contextlib
    import io

    namespace = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), "<cell>", "exec"), namespace)  # noqa: S102
    return out.getvalue()


def test_the_notebook_is_the_stub_plus_a_check_and_runs(tmp_path):
    path = tmp_path / "my_relu.ipynb"
    assert main(["exercise", "relu", "--out", str(path)]) == 0
    notebook = json.loads(path.read_text())
    assert notebook["nbformat"] == 4
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code[0] == exercise_source(["relu"], "npcnn.check(globals()) in the cell below")
    printed = run_notebook(notebook)
    assert "relu  todo  not written yet (relu_forward raises NotImplementedError)" in printed


def test_the_notebook_filled_in_passes_and_npcnn_check_reads_notebooks(tmp_path, capsys):
    notebook = exercise_notebook("relu")
    solution = GOOD.read_text()
    notebook["cells"][1]["source"] = solution.splitlines(keepends=True)
    assert "1 of 1 ops pass." not in run_notebook(exercise_notebook("relu"))
    printed = run_notebook(notebook)
    assert f"{len(OPS)} of {len(OPS)} ops pass." in printed, printed
    path = tmp_path / "done.ipynb"
    path.write_text(json.dumps(notebook))
    assert main(["check", str(path), "--only", "relu,dense"]) == 0, capsys.readouterr()


def test_nbformat_accepts_the_notebook():
    """nbformat (a test dependency) validates the notebook, warnings included:
    nbformat 4.5 wants an id on every cell and warns before it will refuse."""
    import warnings

    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nbformat.validate(nbformat.from_dict(exercise_notebook("all")))
