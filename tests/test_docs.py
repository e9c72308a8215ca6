"""The guide in docs/ is tested, so it cannot drift away from the code.

What is checked, file by file (docs/*.md, and README.md at the root):

- every ```python block runs, the blocks of one file in order in one shared
  namespace (like a notebook), with only NumPy and npcnn;
- a ```text block that directly follows a ```python block is that block's
  expected output: what the block prints must equal it (trailing spaces
  ignored);
- a ```python block preceded by ``<!-- source: npcnn/ops/conv2d.py -->`` is a
  quotation of the code, not an example: it is not run, and it must appear
  verbatim (up to indentation) in that file;
- a ```python block preceded by ``<!-- file: my_relu.py -->`` is a reader's
  file: it is written to that name in the example's (temporary) folder, then
  run like any other block;
- a ```python block preceded by ``<!-- needs: tensorflow -->`` is not run here
  (these tests never import TensorFlow): ``parity_tests/test_model_file.py``
  runs it, with the guide's deployment path end to end;
- every relative link points at a file that exists, and a link written
  [`name`](../some/file.py) names a function or class defined in that file;
- docs/make_figures.py still draws every figure the guide shows (without
  training), and the committed PNGs exist and stay small;
- every numbered chapter ends with a summary, exercises with folded answers
  and a link to the next chapter of the index.

```bash and other ```text blocks (commands that need data or TensorFlow) are
not run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md")) + [p for p in [ROOT / "README.md"] if p.exists()]

FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
SOURCE_MARK = re.compile(r"<!--\s*source:\s*(\S+)\s*-->\s*$")
FILE_MARK = re.compile(r"<!--\s*file:\s*(\S+)\s*-->\s*$")
NEEDS_MARK = re.compile(r"<!--\s*needs:\s*(\S+)\s*-->\s*$")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
NAME_IN_TICKS = re.compile(r"^`([A-Za-z_][A-Za-z0-9_]*)(?:\(\))?`$")


@dataclass
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    source: str | None  # path from a preceding <!-- source: ... --> mark
    output: str | None  # the ```text block right after it, if any
    file: str | None = None  # name from a preceding <!-- file: ... --> mark
    needs: str | None = None  # a framework from a preceding <!-- needs: ... --> mark


def parse_blocks(text: str) -> list[Block]:
    """Fenced code blocks in order, with their quotation marks and expected outputs."""
    matches = list(FENCE.finditer(text))
    blocks = []
    for k, m in enumerate(matches):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = SOURCE_MARK.search(before)
        output = None
        if k + 1 < len(matches):
            nxt = matches[k + 1]
            if nxt.group(1) == "text" and text[m.end() : nxt.start()].strip() == "":
                output = nxt.group(2)
        blocks.append(
            Block(
                language=m.group(1),
                code=m.group(2),
                line=text.count("\n", 0, m.start()) + 1,
                source=mark.group(1) if mark else None,
                output=output,
                file=FILE_MARK.search(before).group(1) if FILE_MARK.search(before) else None,
                needs=NEEDS_MARK.search(before).group(1) if NEEDS_MARK.search(before) else None,
            )
        )
    return blocks


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _is_quoted_in(block_code: str, file_text: str) -> bool:
    """Does the block appear as consecutive lines of the file, up to common indentation?"""
    want = _normalise(textwrap.dedent(block_code))
    lines = file_text.splitlines()
    n = len(want.splitlines())
    return any(
        _normalise(textwrap.dedent("\n".join(lines[i : i + n]))) == want
        for i in range(len(lines) - n + 1)
    )


def _ids(paths):
    return [p.relative_to(ROOT).as_posix() for p in paths]


def run_examples(text: str, where: str) -> int:
    """Run the ```python blocks of one Markdown text in order in one namespace.

    Checks each block's printed output against the ```text block right after
    it, if there is one. Returns how many blocks ran; raises AssertionError
    naming ``where`` and the line on a mismatch.
    """
    namespace = {"__name__": "docs_example"}
    ran = 0
    with np.printoptions():  # examples may change print options; undo afterwards
        for block in parse_blocks(text):
            if block.language != "python" or block.source is not None or block.needs:
                continue
            location = f"{where}:{block.line}"
            if block.file is not None:  # a reader's file: on disk first, for the next blocks
                Path(block.file).write_text(block.code, encoding="utf-8")
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                exec(compile(block.code, location, "exec"), namespace)  # noqa: S102
            ran += 1
            if block.output is not None:
                assert _normalise(stdout.getvalue()) == _normalise(block.output), (
                    f"{location}: printed output differs from the guide\n"
                    f"--- guide ---\n{block.output}\n--- actual ---\n{stdout.getvalue()}"
                )
    return ran


def quote_problems(text: str, where: str) -> list[str]:
    """Blocks marked <!-- source: path --> whose code no longer appears in that file."""
    problems = []
    for block in parse_blocks(text):
        if block.source is None:
            continue
        source = ROOT / block.source
        if not source.is_file():
            problems.append(f"{where}:{block.line}: no such file {block.source}")
        elif not _is_quoted_in(block.code, source.read_text(encoding="utf-8")):
            problems.append(
                f"{where}:{block.line}: the code quoted from {block.source} no longer "
                "appears there; copy the current version into the guide"
            )
    return problems


def link_problems(text: str, folder: Path) -> list[str]:
    """Relative links that point nowhere, or name a function their file does not define."""
    text = FENCE.sub("", text)  # links inside code blocks are not links
    problems = []
    for label, target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # web links and in-page anchors
        resolved = (folder / target.split("#", 1)[0]).resolve()
        if not resolved.exists():
            problems.append(f"[{label}]({target}): {resolved} does not exist")
            continue
        name = NAME_IN_TICKS.match(label.strip())
        if name and resolved.suffix == ".py":
            pattern = rf"^\s*(def|class)\s+{name.group(1)}\b|^{name.group(1)}\s*="
            if not re.search(pattern, resolved.read_text(encoding="utf-8"), re.M):
                problems.append(f"[{label}]({target}): {name.group(1)} is not defined there")
    return problems


def test_the_guide_exists():
    assert (DOCS / "README.md").exists()
    assert len(DOC_FILES) >= 10, [p.name for p in DOC_FILES]


def test_parser_pairs_outputs_and_quotations():
    """The harness itself: outputs pair only with an adjacent ```text block."""
    text = (
        "<!-- source: a.py -->\n```python\nx = 1\n```\n\n"
        "```python\nprint(2)\n```\n```text\n2\n```\n\n"
        "```python\nprint(3)\n```\nprose\n```text\nnot an output\n```\n"
    )
    blocks = parse_blocks(text)
    assert [b.language for b in blocks] == ["python", "python", "text", "python", "text"]
    assert blocks[0].source == "a.py" and blocks[0].output is None
    assert blocks[1].source is None and blocks[1].output == "2\n"
    assert blocks[3].output is None
    assert parse_blocks("<!-- file: my.py -->\n```python\nx = 1\n```\n")[0].file == "my.py"
    assert parse_blocks("<!-- needs: tensorflow -->\n```python\nx\n```\n")[0].needs == "tensorflow"
    assert (
        run_examples("<!-- needs: tensorflow -->\n```python\nimport no_such_module\n```\n", "a")
        == 0
    )
    assert _is_quoted_in("y = 2\nz = 3\n", "def f():\n    y = 2\n    z = 3\n")
    assert not _is_quoted_in("y = 2\nz = 4\n", "def f():\n    y = 2\n    z = 3\n")


def test_the_checks_catch_a_guide_that_went_wrong():
    """Negative controls: a wrong output, a stale quote, a dead link each fail."""
    good = "```python\nx = 2\n```\n\n```python\nprint(x + 1)\n```\n```text\n3\n```\n"
    assert run_examples(good, "good.md") == 2  # blocks share one namespace
    with pytest.raises(AssertionError, match="bad.md:1: printed output differs"):
        run_examples("```python\nprint(1 + 1)\n```\n```text\n3\n```\n", "bad.md")
    with pytest.raises(NameError):
        run_examples("```python\nprint(undefined_name)\n```\n", "bad.md")
    stale = "<!-- source: npcnn/ops/relu.py -->\n```python\nreturn max(x, 0)\n```\n"
    assert quote_problems(stale, "bad.md")
    fresh = "<!-- source: npcnn/ops/relu.py -->\n```python\ndef relu_forward(x):\n```\n"
    assert not quote_problems(fresh, "good.md")
    assert link_problems("[x](no-such-chapter.md)", DOCS)
    assert link_problems("[`no_such_function`](../npcnn/ops/relu.py)", DOCS)
    assert not link_problems("[`relu_forward`](../npcnn/ops/relu.py)", DOCS)


@pytest.mark.parametrize("path", DOC_FILES, ids=_ids(DOC_FILES))
def test_python_examples_run_and_print_what_the_guide_shows(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    where = path.relative_to(ROOT).as_posix()
    ran = run_examples(path.read_text(encoding="utf-8"), where)
    if path.parent == DOCS and path.name != "README.md":
        assert ran > 0, f"{where} has no runnable example"


@pytest.mark.parametrize("path", DOC_FILES, ids=_ids(DOC_FILES))
def test_quoted_code_matches_the_source(path):
    problems = quote_problems(path.read_text(encoding="utf-8"), path.name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOC_FILES, ids=_ids(DOC_FILES))
def test_relative_links_resolve_and_named_functions_exist(path):
    problems = link_problems(path.read_text(encoding="utf-8"), path.parent)
    assert not problems, "\n".join(problems)


def test_make_figures_draws_every_figure_the_guide_shows(tmp_path):
    pytest.importorskip("matplotlib")
    shown = set()
    for path in DOC_FILES:
        shown |= set(re.findall(r"figures/([\w.-]+\.png)", path.read_text(encoding="utf-8")))
    assert shown, "the guide shows no figures"
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    make_figures.main(["--out", str(tmp_path), "--quick"])  # --quick: no training, no data
    drawn = {p.name for p in tmp_path.glob("*.png")}
    missing = shown - drawn
    assert not missing, f"figures in the guide that make_figures.py does not draw: {missing}"
    committed = {p.name for p in (DOCS / "figures").glob("*.png")}
    assert shown <= committed, f"figures not committed under docs/figures: {shown - committed}"
    for name in shown:
        size = (DOCS / "figures" / name).stat().st_size
        assert size < 150_000, f"docs/figures/{name} is {size} bytes; keep figures small"


CHAPTERS = sorted(DOCS.glob("[0-9][0-9]-*.md"))
EXERCISE = re.compile(r"^\*\*\d+\.\*\*", re.M)


def chapter_problems(
    text: str, name: str, following: str | None, preceding: str | None = None
) -> list[str]:
    """A chapter opens with a link to the contents and to the previous chapter,
    and ends with a summary, 2 or more exercises with folded answers (or
    hints), and a link to the next chapter."""
    problems = []
    header = "\n".join(text.splitlines()[:4])
    if "](README.md)" not in header:
        problems.append(f"{name}: the header does not link to the contents (README.md)")
    if preceding is not None and f"]({preceding})" not in header:
        problems.append(f"{name}: the header's 'previous' does not link to {preceding}")
    if "\n## Summary\n" not in text:
        problems.append(f"{name}: no '## Summary' section")
    exercises = text.split("\n## Exercises\n", 1)
    if len(exercises) < 2:
        problems.append(f"{name}: no '## Exercises' section")
    else:
        count = len(EXERCISE.findall(exercises[1]))
        if count < 2:
            problems.append(f"{name}: {count} exercise(s); write 2 or 3")
        if exercises[1].count("<details>") < count - 1:
            problems.append(f"{name}: exercises without a folded <details> answer")
        if exercises[1].count("<details>") != exercises[1].count("</details>"):
            problems.append(f"{name}: unbalanced <details> blocks")
    if following is not None and f"]({following})" not in text.rsplit("## Exercises", 1)[-1]:
        problems.append(f"{name}: the end of the chapter does not link to {following}")
    return problems


def test_the_chapter_pattern_check_catches_a_chapter_without_it():
    good = (
        "# 2. B\n\n[Contents](README.md) · previous: [1. A](01-a.md)\n\n"
        "x\n## Summary\n- a\n\n## Exercises\n\n**1.** q\n\n<details>\n<summary>Answer</summary>\n"
        "a\n</details>\n\n**2.** q\n\n<details>\n<summary>Answer</summary>\na\n</details>\n\n"
        "Next: [2. B](02-b.md)\n"
    )
    assert chapter_problems(good, "good.md", "02-b.md") == []
    assert chapter_problems(good.replace("## Summary", "## Recap"), "bad.md", "02-b.md")
    assert chapter_problems(good.replace("**2.**", "2."), "bad.md", "02-b.md")
    assert chapter_problems(good.replace("</details>", "", 1), "bad.md", "02-b.md")
    assert chapter_problems(good, "bad.md", "03-c.md")
    assert chapter_problems(good, "good.md", "02-b.md", "01-a.md") == []
    assert chapter_problems(good, "bad.md", "02-b.md", "00-z.md")
    assert chapter_problems(good.replace("[Contents](README.md) · ", ""), "bad.md", "02-b.md")


@pytest.mark.parametrize("path", CHAPTERS, ids=_ids(CHAPTERS))
def test_each_chapter_links_back_and_has_a_summary_exercises_and_a_next_link(path):
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    order = re.findall(r"\]\((\d\d-[\w-]+\.md)\)", index)
    assert path.name in order, f"{path.name} is not in the guide's index (docs/README.md)"
    position = order.index(path.name)
    following = order[position + 1] if position + 1 < len(order) else None
    preceding = order[position - 1] if position > 0 else None
    text = path.read_text(encoding="utf-8")
    problems = chapter_problems(text, path.name, following, preceding)
    assert not problems, "\n".join(problems)
