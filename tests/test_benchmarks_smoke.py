"""Smoke tests of ``python -m benchmarks`` (benchmarks are not tests: no timing is checked).

Each runs the one entry point in-process at the smoke mode's tiny sizes on npcnn
alone (a few seconds), and checks what a user gets: one JSON file per section
in the results folder, the Markdown report rebuilt from them, the figure, the
rows asked for, a row saying how to install a peer that is missing, exit 0.
The peers themselves (PyTorch, JAX, MyGrad) are smoke-run in
tests/benchmarks/test_peers_smoke.py, TensorFlow there too.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from benchmarks import report
from benchmarks.__main__ import main

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
NUMPY_ONLY = "npcnn,npcnn naive"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    args = ["--mode", "smoke", "--systems", NUMPY_ONLY, "--out", str(out)]
    assert main([*args, "--sections", "matmul,op,headline,float64,breakdown"]) == 0
    return out, report.load(str(out))


def test_one_json_per_section_with_machine_and_rows(smoke_run):
    out, data = smoke_run
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["breakdown.json", "float64.json", "headline.json", "matmul.json", "op.json"]
    part = json.loads((out / "headline.json").read_text())
    assert part["machine"]["cpu_model"] and part["machine"]["threads"] >= 1
    assert {r["section"] for r in part["results"]} == {"headline"}
    for r in data["results"]:
        if "min_s" in r:
            assert r["median_s"] > 0 and r["min_s"] <= r["median_s"] <= r["max_s"], r


def test_rows_cover_the_systems_and_the_roofline(smoke_run):
    _, data = smoke_run
    res = data["results"]
    assert {r["impl"] for r in res if r["section"] == "op"} == {"npcnn", "npcnn naive"}
    step = report.find(res, "headline", "npcnn", "train step")
    assert step["gflops_per_s"] > 0 and step["pct_of_peak"] > 0  # against the same run's peak
    assert {r["kind"] for r in res if r["section"] == "headline"} == {"train step", "inference"}
    assert {r["dtype"] for r in res if r["section"] == "float64"} == {"float32", "float64"}


def test_breakdown_times_every_layer_of_the_model(smoke_run):
    import npcnn

    _, data = smoke_run
    parts = {r["name"] for r in data["results"] if r["section"] == "breakdown"}
    for layer in npcnn.seed_cnn().layers:
        assert {f"{layer.name} forward", f"{layer.name} backward"} <= parts
    assert {"loss forward+backward", "Adam update", "step"} <= parts


def test_report_and_figure_are_written(smoke_run):
    out, data = smoke_run
    md = (out / "report.md").read_text()
    assert "## Every system: training step and inference" in md
    assert "| npcnn (fast tier) |" in md and "## Where the training step's time goes" in md
    assert "## Targets" in md and "float64 / float32 training step" in md
    if HAVE_MPL:
        assert (out / "peers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_section_run_keeps_the_first_ones(smoke_run, tmp_path):
    """Each section file holds its latest run; the report is rebuilt from all of them."""
    out, _ = smoke_run
    for path in out.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    args = ["--mode", "smoke", "--systems", "npcnn", "--out", str(tmp_path), "--no-plots"]
    assert main([*args, "--sections", "conv gemm"]) == 0
    sections = {r["section"] for r in report.load(str(tmp_path))["results"]}
    assert {"conv gemm", "headline", "op", "matmul"} <= sections


def test_missing_peers_are_rows_saying_how_to_install_them(tmp_path, monkeypatch, capsys):
    for module in ("torch", "jax", "mygrad"):
        monkeypatch.setitem(sys.modules, module, None)  # import now fails, as if absent
    systems = "npcnn,torch eager,torch compile,jax jit,mygrad"
    args = ["--mode", "smoke", "--sections", "headline", "--systems", systems]
    assert main([*args, "--out", str(tmp_path), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    for system in ("torch eager", "jax jit", "mygrad"):
        assert f"{system}: no rows:" in printed
    assert "pip install '.[peers]'" in printed
    md = (tmp_path / "report.md").read_text()
    assert "| mygrad | no rows: mygrad is not installed: pip install '.[peers]'" in md


def test_unknown_section_or_system_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--sections", "nonsense"])
    assert e.value.code == 2 and "unknown section 'nonsense'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--systems", "caffe"])


def test_gpu_without_cupy_fails_clearly(tmp_path, capsys):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: --device gpu would run")
    assert main(["--device", "gpu", "--mode", "smoke", "--out", str(tmp_path)]) == 2
    assert "needs CuPy" in capsys.readouterr().err


def test_another_checkout_is_timed_beside_npcnn(tmp_path):
    """--old loads a checkout's npcnn under another name (here this very checkout)
    and times it as 'npcnn old' in the same rounds."""
    from pathlib import Path

    import npcnn
    from benchmarks.checkouts import load_checkout

    root = Path(npcnn.__file__).resolve().parent.parent
    args = ["--mode", "smoke", "--sections", "headline", "--systems", "npcnn", "--no-plots"]
    assert main([*args, "--old", str(root), "--out", str(tmp_path)]) == 0
    impls = {r["impl"] for r in report.load(str(tmp_path))["results"]}
    assert impls == {"npcnn", "npcnn old"}
    other = sys.modules["npcnn_old"]
    assert other is not npcnn and other.seed_cnn().layers[0].__class__ is not npcnn.Conv2D
    with pytest.raises(FileNotFoundError, match="not an npcnn checkout"):
        load_checkout(tmp_path, name="npcnn_nowhere")


def test_publish_rewrites_only_the_marked_blocks(smoke_run, tmp_path):
    out, _ = smoke_run
    doc = tmp_path / "README.md"
    doc.write_text(
        "# Title\n\n<!-- benchmarks: peers -->\nold table\n<!-- /benchmarks: peers -->\n\n"
        "kept\n<!-- benchmarks: machine -->\n<!-- /benchmarks: machine -->\n"
    )
    assert report.publish(str(out), [str(doc)]) == [str(doc)]
    text = doc.read_text()
    assert "old table" not in text and "| npcnn (fast tier) |" in text
    assert text.startswith("# Title\n") and "\nkept\n" in text and "- CPU: " in text
    with pytest.raises(ValueError, match="no block"):
        report.replace_block("nothing marked", "peers", "x")


def test_targets_rows_from_medians():
    """The targets table: ratios against the fastest framework, % of peak, 1 -> 2 cores,
    float64 / float32, peak memory against TF's."""

    def row(section, impl, kind, s, cores="all", dtype="float32", batch=50, **kw):
        return {"section": section, "impl": impl, "kind": kind, "median_s": s, "cores": cores,
                "dtype": dtype, "batch": batch, **kw}  # fmt: skip

    results = [
        row("headline", "npcnn", "train step", 0.06, pct_of_peak=30.0, threads=2),
        row("headline", "tf function", "train step", 0.05),
        row("headline", "torch eager", "train step", 0.04),
        row("headline", "npcnn", "train step", 0.09, cores="one"),
        row("headline", "jax jit", "train step", 0.10, cores="one"),
        row("headline", "npcnn", "inference", 0.4, batch=1000),
        row("headline", "jax jit", "inference", 0.2, batch=1000),
        row("float64", "npcnn", "train step", 0.06),
        row("float64", "npcnn", "train step", 0.09, dtype="float64"),
        {"section": "memory", "impl": "npcnn", "batch": 10000, "batch_size": 1000,
         "peak_bytes": 2e8, "dtype": "float32"},
        {"section": "memory", "impl": "tf predict", "batch": 10000, "batch_size": 1000,
         "peak_bytes": 8e8, "dtype": "float32"},
    ]  # fmt: skip
    rows = report.targets_rows({"results": results, "machine": {"peers": {"torch": "2.13"}}})
    got = {what.split(",")[0] + (" one" if "one core (" in what else ""): (v, t)
           for what, v, t in rows}  # fmt: skip
    assert got["train step"] == ("1.50x", "<= 1x (not met)")
    assert "PyTorch 2.13 eager" in rows[0][0]
    assert got["train step one"] == ("0.90x", "<= 1x (met)")
    assert got["inference"] == ("0.50x", ">= 0.9x (not met)")
    assert got["training step as % of the measured matmul peak (all cores)"][0] == "30%"
    assert got["npcnn's step"] == ("1.50x", ">= 1.8x (not met)")
    assert got["float64 / float32 training step"] == ("1.50x", "<= 1.6x (met)")
    assert got["peak memory of predict on 10"][0] == "npcnn 200 MB, TF 800 MB (0.25x)"


def test_the_wheel_installs_npcnn_and_tfcnn_but_not_benchmarks():
    """A top-level package named 'benchmarks' in site-packages would collide with any
    other project's: pyproject's package discovery leaves it out."""
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    from setuptools import find_packages

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(root), include=include)
    assert {"npcnn", "npcnn.fast", "tfcnn"} <= set(packages)
    assert not [p for p in packages if p.split(".")[0] == "benchmarks"]
    assert "peers" in config["project"]["optional-dependencies"]
