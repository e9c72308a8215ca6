"""Smoke tests of ``python -m benchmarks`` (benchmarks are not tests: no timing is checked).

Each runs the one entry point in-process at the smoke mode's tiny sizes on npcnn's
tiers (seconds), every system in a worker process of its own, and checks what a
user gets: one JSON file per section, the machine block (CPU, vector extensions,
BLAS, load and matmul peak before and after), the Markdown report and the figure,
the rows asked for on each core setting, a row saying how to install a missing
peer, a row saying how a crashing, hanging or failing system ended, and
``--publish`` refusing a busy machine. The frameworks themselves are smoke-run in
tests/benchmarks/test_peers_smoke.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from benchmarks import __main__ as entry
from benchmarks import machine, report, suite
from benchmarks.__main__ import main

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
FAKES = "tests.benchmarks.fakes"
SMOKE = ["--mode", "smoke", "--no-plots"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    args = ["--mode", "smoke", "--systems", "npcnn,npcnn-ops,npcnn-naive", "--out", str(out)]
    sections = "matmul,op,headline,float64,adam,memory,breakdown"
    assert main([*args, "--sections", sections, "--cores", "all,one,busy"]) == 0
    return out, report.load(str(out))


def test_one_json_per_section_with_the_machine(smoke_run):
    out, data = smoke_run
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == ["adam.json", "breakdown.json", "float64.json", "headline.json", "matmul.json",
                     "memory.json", "op.json"]  # fmt: skip
    m = json.loads((out / "headline.json").read_text())["machine"]
    assert m["cpu_model"] and m["logical_cpus"] >= 1 and "vector" in m
    assert len(m["load_average_at_start"]) == 3 and len(m["load_average_at_end"]) == 3
    assert m["peak_start_gflops"] > 0 and m["peak_end_gflops"] > 0
    assert m["numpy_worker"]["blas"]["pools"], "threadpoolctl's BLAS pools, with the kernel"
    assert m["versions"]["numpy"]
    for r in data["results"]:
        if r["section"] == "memory":
            assert r["peak_bytes"] >= 0 and r["impl"] == "npcnn", r
        else:
            assert r["median_s"] > 0 and r["min_s"] <= r["median_s"] <= r["max_s"], r


def test_rows_cover_the_systems_the_cores_and_the_roofline(smoke_run):
    _, data = smoke_run
    res = data["results"]
    assert {r["impl"] for r in res if r["section"] == "op"} == {"npcnn", "npcnn-naive"}
    for cores, kinds in (("all", {"train step", "inference"}), ("one", {"train step",
                         "inference"}), ("busy", {"train step"})):  # fmt: skip
        head = [r for r in res if r["section"] == "headline" and r["cores"] == cores]
        assert {r["kind"] for r in head} == kinds and {r["impl"] for r in head} == {
            "npcnn", "npcnn-ops"}, cores  # fmt: skip
    assert {r["threads"] for r in res if r["cores"] == "one"} == {1}
    step = report.find(res, "headline", "npcnn", "train step")
    assert step["gflops_per_s"] > 0 and step["pct_of_peak"] > 0  # against the same run's peak
    assert {r["dtype"] for r in res if r["section"] == "float64"} == {"float32", "float64"}
    assert report.find(res, "adam", "npcnn", "update", batch=0)["median_s"] > 0
    parts = [r for r in res if r["section"] == "breakdown"]  # npcnn's step in three parts
    assert sorted(r["name"] for r in parts) == ["adam", "matrix products", "rest"]
    assert {r["cores"] for r in parts} == {"one"}  # on one core only


def test_report_and_figure_are_written(smoke_run):
    out, data = smoke_run
    md = (out / "report.md").read_text()
    assert "## Every system: training step and inference" in md
    assert "| npcnn (fast tier) |" in md and "+ 1 CPU-burning process |" in md
    assert "- CPU: " in md and "at the start" in md and "kernel " in md
    assert "## Targets" in md and "float64 / float32 training step" in md
    assert "## Where npcnn's step goes, one core" in md
    if HAVE_MPL:
        assert (out / "peers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / "breakdown.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_section_run_keeps_the_first_ones(smoke_run, tmp_path):
    """Each section file holds its latest run; the report is rebuilt from all of them."""
    out, _ = smoke_run
    for path in out.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    assert main([*SMOKE, "--systems", "npcnn", "--out", str(tmp_path), "--sections", "adam"]) == 0
    sections = {r["section"] for r in report.load(str(tmp_path))["results"]}
    assert {"adam", "headline", "op", "matmul"} <= sections


def test_a_crashing_a_hanging_and_a_failing_system_are_rows(tmp_path):
    """A worker killed by SIGSEGV, one that never answers, one whose case raises: each
    is a row saying what happened, npcnn's rows are there, the report is written."""
    systems = f"npcnn,{FAKES}:segfault,{FAKES}:hang,{FAKES}:raises"
    args = [*SMOKE, "--sections", "headline", "--systems", systems, "--timeout", "4"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    res = report.load(str(tmp_path))["results"]
    for kind in ("train step", "inference"):
        assert report.find(res, "headline", "npcnn", kind)["median_s"] > 0
        why = {r["impl"].split(":")[-1]: r.get("error", "") for r in res if r["kind"] == kind}
        assert why["segfault"].startswith("crashed (signal SIGSEGV; log: "), why
        assert why["hang"].startswith("hung: no answer in 4 s (killed; log: "), why
        assert why["raises"] == "MemoryError: Unable to allocate 7.5 GiB for an array", why
    log = why["segfault"].split("log: ")[1].rstrip(")")
    assert open(log).read() is not None
    md = (tmp_path / "report.md").read_text()
    assert "| tests.benchmarks.fakes:segfault | crashed (signal SIGSEGV) |" in md


def test_a_case_prepared_in_a_worker_that_crashed_since_is_a_row():
    """Two cases in one worker: the second crashes it while being prepared; the first,
    prepared in the dead process, is a row saying so, not a question to a new one."""
    system = f"{FAKES}:segfault_on_float64"
    config = entry.parse_args([*SMOKE, "--systems", system])
    co = suite.Coordinator(config, log=lambda *args: None)
    try:
        rows = co.group([(system, suite.spec("float64", "seed cnn", "train step", 2, dtype))
                         for dtype in ("float32", "float64")])  # fmt: skip
    finally:
        co.close()
    why = {r["dtype"]: r["error"] for r in rows}
    assert why["float64"].startswith("crashed (signal SIGSEGV"), why
    assert why["float32"] == "its worker crashed or hung while preparing another case", why


def test_missing_peers_are_rows_saying_how_to_install_them(tmp_path, monkeypatch, capsys):
    for module in ("torch", "jax", "mygrad"):
        monkeypatch.setitem(sys.modules, module, None)  # find_spec now finds nothing
    systems = "npcnn,torch-eager,jax-jit,mygrad"
    assert main([*SMOKE, "--sections", "headline", "--systems", systems, "--out",
                 str(tmp_path)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    for system in ("torch-eager", "jax-jit", "mygrad"):
        assert f"{system}: no rows:" in printed
    md = (tmp_path / "report.md").read_text()
    assert "| mygrad | no rows: mygrad is not installed: pip install '.[peers]'" in md


def test_unknown_section_system_or_cores_is_a_usage_error(capsys):
    for args in (["--sections", "nonsense"], ["--systems", "caffe"], ["--cores", "many"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2
    assert "unknown section 'nonsense'" in capsys.readouterr().err


def test_gpu_without_cupy_fails_clearly(tmp_path, capsys):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed: --device gpu would run")
    assert main(["--device", "gpu", *SMOKE, "--out", str(tmp_path)]) == 2
    assert "needs CuPy" in capsys.readouterr().err


def test_another_checkout_is_timed_beside_npcnn(tmp_path):
    """--old runs a checkout's npcnn (here this very one) in a worker of its own as
    npcnn-old, in the same rounds."""
    from pathlib import Path

    root = Path(entry.ROOT)
    args = [*SMOKE, "--sections", "headline", "--systems", "npcnn", "--old", str(root)]
    assert main([*args, "--out", str(tmp_path)]) == 0
    impls = {r["impl"] for r in report.load(str(tmp_path))["results"]}
    assert impls == {"npcnn", "npcnn-old"}


# ---------------------------------------------------------------- publishing
MARKED = """# Title

<!-- benchmarks: peers -->
old table
<!-- /benchmarks: peers -->
<!-- benchmarks: figure -->
<!-- /benchmarks: figure -->
kept
<!-- benchmarks: machine -->
<!-- /benchmarks: machine -->
<!-- benchmarks: breakdown -->
<!-- /benchmarks: breakdown -->
"""


@pytest.fixture
def documents(tmp_path, monkeypatch):
    """Copies of the published files, marked as the real ones are, in their place."""
    (tmp_path / "docs").mkdir()
    paths = [tmp_path / "README.md", tmp_path / "RESULTS.md", tmp_path / "docs" / "ch14.md"]
    for path in paths:
        path.write_text(MARKED)
    monkeypatch.setattr(entry, "PUBLISHED", paths)
    return paths


def publish(tmp_path, *extra):
    args = [*SMOKE, "--sections", "matmul,headline", "--systems", "npcnn", "--publish", *extra]
    return main([*args, "--out", str(tmp_path / "results")])


def test_publish_refuses_a_busy_machine(documents, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(machine, "load_average", lambda: [3.07, 6.6, 6.79])
    before = [p.read_text() for p in documents]
    assert publish(tmp_path) == entry.REFUSED
    err = capsys.readouterr().err
    assert "refusing to publish: the 1-minute load average was 3.07 before the run" in err
    assert [p.read_text() for p in documents] == before
    assert not (tmp_path / "results").exists()


def test_publish_refuses_when_the_peak_moved(monkeypatch):
    moved = {"load_average_at_start": [0.1, 0.2, 0.2], "peak_start_gflops": 185.0,
             "peak_end_gflops": 36.0}  # fmt: skip
    reasons = machine.busy_reasons(moved)
    assert reasons == ["the matmul peak moved from 185 to 36 GFLOP/s during the run "
                       "(more than 10%)"]  # fmt: skip
    quiet = {"load_average_at_start": [0.4], "peak_start_gflops": 185, "peak_end_gflops": 170}
    assert machine.busy_reasons(quiet) == []


def test_publish_on_a_quiet_machine_rewrites_tables_figure_and_machine(
    documents, tmp_path, monkeypatch
):
    monkeypatch.setattr(machine, "load_average", lambda: [0.05, 0.1, 0.2])
    monkeypatch.setattr(suite.Coordinator, "peak", lambda self: 185.0)
    assert publish(tmp_path) == 0
    readme, results, chapter = (p.read_text() for p in documents)
    assert "old table" not in readme and "| npcnn (fast tier) |" in readme
    assert "(results/peers.png)" in readme and "(../results/peers.png)" in chapter
    assert "[results/report.md](results/report.md)" in readme
    if HAVE_MPL:  # drawn although the run said --no-plots: the documents link it
        assert (tmp_path / "results" / "peers.png").read_bytes()[:4] == b"\x89PNG"
    assert readme.startswith("# Title\n") and "\nkept\n" in readme
    assert "- CPU: " in results and "at the start 185 GFLOP/s" in results
    assert "--force" not in results


def test_publish_fills_the_breakdown_block_with_its_table_and_figure(
    documents, tmp_path, monkeypatch
):
    monkeypatch.setattr(machine, "load_average", lambda: [0.05, 0.1, 0.2])
    monkeypatch.setattr(suite.Coordinator, "peak", lambda self: 185.0)
    args = [*SMOKE, "--sections", "headline,breakdown", "--systems", "npcnn", "--cores", "one"]
    assert main([*args, "--publish", "--out", str(tmp_path / "results")]) == 0
    results, chapter = documents[1].read_text(), documents[2].read_text()
    assert "| dtype | the step (sum) | its matrix products | Adam's update | the rest |" in results
    assert "| float32 | " in results
    if HAVE_MPL:
        assert (tmp_path / "results" / "breakdown.png").read_bytes()[:4] == b"\x89PNG"
        assert "(results/breakdown.png)" in results and "(../results/breakdown.png)" in chapter


def test_publish_with_force_says_so(documents, tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "load_average", lambda: [2.5, 2.0, 2.0])
    monkeypatch.setattr(suite.Coordinator, "peak", lambda self: 185.0)
    assert publish(tmp_path, "--force") == 0
    assert "- published with --force on a busy machine: the 1-minute load average was 2.50" in (
        documents[1].read_text()
    )


def test_replace_block_needs_its_markers():
    with pytest.raises(ValueError, match="no block"):
        report.replace_block("nothing marked", "peers", "x")


def test_targets_rows_from_medians():
    """The fast tier's targets table: ratios against the fastest framework (all cores,
    one core), against PyTorch eager on one core and TF under the same CPU burner,
    inference throughput, float64 / float32, peak memory against TF's; must and aim."""

    def row(section, impl, kind, s, cores="all", dtype="float32", batch=50, **kw):
        return {"section": section, "impl": impl, "kind": kind, "median_s": s, "cores": cores,
                "dtype": dtype, "batch": batch, **kw}  # fmt: skip

    results = [
        row("headline", "npcnn", "train step", 0.06, pct_of_peak=30.0, threads=2),
        row("headline", "tf-function", "train step", 0.05),
        row("headline", "torch-eager", "train step", 0.04),
        row("headline", "torch-compile", "train step", None, error="crashed (signal SIGSEGV)"),
        row("headline", "npcnn", "train step", 0.09, cores="one"),
        row("headline", "jax-jit", "train step", 0.10, cores="one"),
        row("headline", "torch-eager", "train step", 0.08, cores="one"),
        row("headline", "npcnn", "train step", 0.07, cores="busy"),
        row("headline", "tf-function", "train step", 0.10, cores="busy"),
        row("headline", "npcnn", "inference", 0.4, batch=1000),
        row("headline", "jax-jit", "inference", 0.2, batch=1000),
        row("float64", "npcnn", "train step", 0.06),
        row("float64", "npcnn", "train step", 0.09, dtype="float64"),
        {"section": "memory", "impl": "npcnn", "batch": 10000, "batch_size": 1000,
         "peak_bytes": 2e8, "dtype": "float32"},
        {"section": "memory", "impl": "tf-function", "batch": 10000, "batch_size": 1000,
         "peak_bytes": 8e8, "dtype": "float32"},
    ]  # fmt: skip
    rows = report.targets_rows({"results": results, "machine": {"versions": {"torch": "2.14"}}})
    got = {what: rest for what, *rest in rows}
    step = [w for w in got if w.startswith("train step") and "all cores:" in w][0]
    assert got[step] == ["1.50x", "<= 1.2x (not)", "<= 1x (not)"]
    assert "the fastest, PyTorch 2.14 eager" in step
    one = [w for w in got if "1 core: npcnn vs the fastest" in w][0]
    assert got[one] == ["1.12x", "<= 1.3x (met)", "<= 1x (not)"]  # vs PyTorch's 0.08
    one_torch = [w for w in got if "1 core: npcnn vs PyTorch" in w][0]
    assert got[one_torch][0] == "1.12x"
    busy = [w for w in got if "CPU-burning" in w][0]
    assert got[busy] == ["0.70x", "<= 1x (met)", "<= 0.8x (met)"]
    inference = [w for w in got if w.startswith("inference")][0]
    assert got[inference] == ["0.50x", ">= 0.6x (not)", ">= 0.75x (not)"]
    assert got["float64 / float32 training step"] == ["1.50x", "<= 2x (met)", "<= 1.8x (met)"]
    memory = [w for w in got if w.startswith("peak memory")][0]
    assert got[memory][0] == "npcnn 200 MB, TF 800 MB (0.25x)"
    assert got["training step as % of the measured matmul peak (all cores)"][0] == "30%"


def test_repeated_runs_judge_each_target_on_the_median_of_the_runs():
    """--repeat: the targets table takes each target's median over the runs and
    shows every run's value; a target missing from some runs uses those it has."""
    results = [
        {"section": "float64", "impl": "npcnn", "kind": "train step", "median_s": s,
         "cores": "all", "dtype": d, "batch": 50}
        for s, d in ((0.10, "float32"), (0.25, "float64"))
    ]  # fmt: skip
    data = {"results": results, "machine": {}, "target_runs": [{"f64": 1.9}, {"f64": 2.3},
                                                               {"f64": 2.5}]}  # fmt: skip
    rows = {what: rest for what, *rest in report.targets_rows(data)}
    got = rows["float64 / float32 training step"]
    assert got == ["2.30x, the median of 3 runs (1.90, 2.30, 2.50)", "<= 2x (not)",
                   "<= 1.8x (not)"]  # fmt: skip
    data["target_runs"] = [{"f64": 1.9}, {"f64": 2.0}, {}]
    rows = {what: rest for what, *rest in report.targets_rows(data)}
    assert rows["float64 / float32 training step"][:2] == [
        "1.95x, the median of 2 runs (1.90, 2.00)", "<= 2x (met)"]  # fmt: skip
    data.pop("target_runs")  # one run: its own value
    assert {w: r for w, *r in report.targets_rows(data)}["float64 / float32 training step"][
        0] == "2.50x"  # fmt: skip


def test_repeat_runs_everything_n_times_and_keeps_each_runs_targets(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(suite.Coordinator, "peak", lambda self: 185.0)  # no run left out
    out = tmp_path / "results"
    args = [*SMOKE, "--sections", "float64", "--systems", "npcnn", "--repeat", "2"]
    assert main([*args, "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("=== run ") == 2
    saved = json.loads((out / "float64.json").read_text())
    assert len(saved["target_runs"]) == 2 and all("f64" in run for run in saved["target_runs"])
    assert "the median of 2 runs" in (out / "report.md").read_text()


def test_repeated_runs_leave_out_a_run_whose_peak_moved_and_check_the_first_load():
    def info(load, start, end):
        return {"machine": {"load_average_at_start": [load], "peak_start_gflops": start,
                            "peak_end_gflops": end}}  # fmt: skip

    quiet, loaded_after = info(0.3, 185, 180), info(1.9, 180, 184)  # a run loads the next
    assert entry.sort_runs([quiet, loaded_after]) == ([quiet, loaded_after], [], [])
    busy_first = [info(0.9, 185, 180), info(0.1, 180, 184)]
    assert entry.sort_runs(busy_first)[2] == [
        "the 1-minute load average was 0.90 before the run (more than 0.5)"]  # fmt: skip
    moved = info(0.3, 180, 90)
    kept, left_out, busy = entry.sort_runs([quiet, moved, loaded_after])
    assert kept == [quiet, loaded_after] and busy == []
    assert left_out == ["run 2 of 3: the matmul peak moved from 180 to 90 GFLOP/s during the "
                        "run (more than 10%)"]  # fmt: skip
    assert entry.sort_runs([moved, moved])[2] == [
        "run 1 of 2: the matmul peak moved from 180 to 90 GFLOP/s during the run (more than 10%)",
        "run 2 of 2: the matmul peak moved from 180 to 90 GFLOP/s during the run (more than 10%)",
    ]
    assert entry.sort_runs([moved])[2] == [  # one run: as before
        "the matmul peak moved from 180 to 90 GFLOP/s during the run (more than 10%)"]  # fmt: skip
    data = {"machine": {**moved["machine"], "cpu_model": "x", "vector": "y", "logical_cpus": 2,
                        "python": "3", "left_out": left_out}}  # fmt: skip
    assert any(line.startswith("- left out of the tables and the targets' medians: run 2 of 3")
               for line in report.machine_lines(data))  # fmt: skip


def test_repeat_must_be_one_or_more(capsys):
    with pytest.raises(SystemExit):
        entry.parse_args(["--repeat", "0"])
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


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
