"""``python -m benchmarks`` with the frameworks installed: TensorFlow, PyTorch, JAX and
MyGrad, all of them in one run (each in a worker process of its own, so PyTorch's
dynamo never meets TensorFlow), give their rows at the smoke mode's tiny sizes on
all cores and on one core, and the coordinator loads none of them. No timing is
checked. Skips where none is installed;
a missing one alone is a row saying how to install it (tests/test_benchmarks_smoke.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report

ROOT = Path(__file__).resolve().parents[2]
COORDINATOR = """
import sys
from benchmarks.__main__ import main
assert main(sys.argv[1:]) == 0
frameworks = {"tensorflow", "torch", "jax", "mygrad", "cupy"} & set(sys.modules)
print("frameworks in the coordinator:", sorted(frameworks))
"""

PEERS = {"tf-eager": "tensorflow", "tf-function": "tensorflow", "torch-eager": "torch",
         "jax-jit": "jax", "mygrad": "mygrad"}  # fmt: skip
INSTALLED = [s for s, module in PEERS.items() if importlib.util.find_spec(module)]


@pytest.mark.skipif(not INSTALLED, reason="no peer installed: pip install '.[peers]'")
def test_every_installed_peer_has_its_rows_in_one_run(tmp_path):
    systems = ",".join(["npcnn", *INSTALLED])
    args = ["--mode", "smoke", "--sections", "matmul,headline,adam", "--systems", systems]
    args += ["--cores", "both", "--no-plots", "--out", str(tmp_path)]
    done = subprocess.run([sys.executable, "-c", COORDINATOR, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "frameworks in the coordinator: []" in done.stdout
    data = report.load(str(tmp_path))
    res = data["results"]
    assert not [r for r in res if r.get("error")], [r for r in res if r.get("error")]
    for system in ["npcnn", *INSTALLED]:
        for kind in ("train step", "inference"):
            for cores in ("all", "one"):
                r = report.find(res, "headline", system, kind, cores=cores)
                assert r is not None and r["median_s"] > 0, (system, kind, cores)
    for system in [s for s in ("tf-eager", "tf-function") if s in INSTALLED]:
        assert report.find(res, "adam", system, "update")["median_s"] > 0
    table = "\n".join(report.peers_table(data))
    assert all(report.label(s, data["machine"]["versions"]) in table for s in INSTALLED)
