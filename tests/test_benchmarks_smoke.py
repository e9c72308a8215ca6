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


def test_step_timer_splits_the_real_step_into_segments():
    """benchmarks/breakdown.py's stopwatch on npcnn's real train_step (no TF):
    every segment timed, and they add up to the step with "other"."""
    import npcnn
    from benchmarks import breakdown

    timer = breakdown.StepTimer(npcnn, n=2)
    try:
        times = timer()
    finally:
        timer.restore()
    assert npcnn.model.fused_forward.__name__ == "fused_forward"  # unwrapped again
    segments = [s for s in times if s != "step"]
    assert set(breakdown.SEGMENTS) <= set(segments)
    assert all(times[s] > 0 for s in breakdown.SEGMENTS)
    assert sum(times[s] for s in segments) == pytest.approx(times["step"])


def test_another_checkout_loads_beside_npcnn_and_is_timed_too(tmp_path):
    """checkouts.load_checkout imports a checkout's npcnn under another name
    (here this very checkout), and its step is timed like npcnn's."""
    from pathlib import Path

    import npcnn
    from benchmarks import breakdown
    from benchmarks.checkouts import load_checkout

    root = Path(npcnn.__file__).resolve().parent.parent
    other = load_checkout(root, name="npcnn_smoke_copy")
    assert other is not npcnn and other.__name__ == "npcnn_smoke_copy"
    assert other.seed_cnn().layers[0].__class__ is not npcnn.seed_cnn().layers[0].__class__
    timer = breakdown.StepTimer(other, n=2)
    assert timer()["step"] > 0
    timer.restore()
    with pytest.raises(FileNotFoundError, match="not an npcnn checkout"):
        load_checkout(tmp_path, name="npcnn_nowhere")


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")
def test_breakdown_table_and_plot_from_medians(tmp_path):
    from benchmarks import breakdown

    rows = [breakdown.label(s) for s in breakdown.SEGMENTS] + ["other"]
    result = {
        impl: {**{r: 1.0 + k for k, r in enumerate(rows)}, "step": 50.0}
        for impl in ("TensorFlow", "npcnn before", "npcnn")
    }
    result["TensorFlow"]["other"] = -3.0  # the compiled step overlaps its segments
    breakdown.write(result, tmp_path)
    md = (tmp_path / "breakdown.md").read_text()
    assert "| conv2 + pool2 backward |" in md and "| step | 50.00 | 50.00 | 50.00 | 1.00x |" in md
    assert (tmp_path / "step_breakdown.png").stat().st_size > 1000


def test_targets_table_without_an_old_checkout_leaves_old_empty():
    from benchmarks import targets

    run = {
        "new step f32": 0.06, "new step f64": 0.12, "new predict": 0.3,
        "tf step": 0.04, "tf predict": 0.1, "tf predict chunked": 0.12,
    }  # fmt: skip
    rows = targets.table(dict(run), dict(run, **{"new step f32": 0.09}))
    assert [r[2] for r in rows] == ["-"] * 6
    assert rows[0][3] == "1.50x" and rows[2][3] == "1.50x" and rows[5][3] == "2.00x"


def test_targets_markdown_states_the_machine_and_peak():
    from benchmarks import targets

    line = targets.machine_line({"float32": 284.2, "float64": 133.6})
    assert "matmul peak" in line and "284 GFLOP/s float32, 134 GFLOP/s float64" in line
    run = {
        "new step f32": 0.06, "new step f64": 0.12, "new predict": 0.3,
        "tf step": 0.04, "tf predict": 0.1, "tf predict chunked": 0.12,
    }  # fmt: skip
    md = targets.markdown(dict(run), dict(run), {32: 0.045}, line)
    assert md.startswith("Machine: ") and "| training step, batch 50" in md
    assert "N=32: 45.00 ms, 1406 us/image" in md
