"""Smoke test of the benchmark suite (benchmarks are not tests: no timing is checked).

Runs ``python -m benchmarks --mode smoke`` in-process on tiny sizes and checks
that the JSON, the Markdown report and (when matplotlib is installed) the PNG
plots are written and hold the rows asked for. TF rows are included when
TensorFlow is installed. Takes about 10-25 s on 2 busy cores.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from benchmarks.__main__ import main

HAVE_TF = importlib.util.find_spec("tensorflow") is not None
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    sections = "matmul,conv gemm,op,adam,headline"
    assert main(["--mode", "smoke", "--sections", sections, "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_json_has_machine_and_every_section(smoke_run):
    _, data = smoke_run
    assert data["machine"]["device"] == "cpu"
    assert data["machine"]["numpy_version"]
    sections = {r["section"] for r in data["results"]}
    assert sections == {"matmul", "conv gemm", "op", "adam", "headline"}
    for r in data["results"]:
        assert r["median_s"] > 0 and r["min_s"] <= r["median_s"] <= r["max_s"], r
    assert data["matmul_peak_gflops"]["numpy float32"] > 0


def test_rows_cover_the_implementations(smoke_run):
    _, data = smoke_run
    impls = {r["impl"] for r in data["results"] if r["section"] == "op"}
    assert {"npcnn", "npcnn naive"} <= impls
    headline = [r for r in data["results"] if r["section"] == "headline"]
    assert {r["kind"] for r in headline} == {"train step", "inference"}
    if HAVE_TF:
        assert {"tf eager", "tf function"} <= impls
        step = next(r for r in headline if r["impl"] == "npcnn" and r["kind"] == "train step")
        assert set(step["ratios"]) == {"npcnn / tf eager", "npcnn / tf function"}
        assert step["gflops_per_s"] > 0 and step["pct_of_peak"] > 0


def test_markdown_and_plots_are_written(smoke_run):
    out, data = smoke_run
    md = (out / "results.md").read_text()
    assert "## Headline" in md and "| npcnn |" in md
    if HAVE_MPL:
        for name in ("op_ratios.png", "time_vs_batch.png"):
            png = out / name
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_gpu_without_cupy_fails_clearly(tmp_path, capsys):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: --device gpu would run")
    assert main(["--device", "gpu", "--mode", "smoke", "--out", str(tmp_path)]) == 2
    assert "needs CuPy" in capsys.readouterr().err
