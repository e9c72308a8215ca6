"""``python -m benchmarks`` with the frameworks installed: PyTorch, JAX and MyGrad
(the ``peers`` extra) and TensorFlow each give their rows at the smoke mode's
tiny sizes. No timing is checked. Skips, naming the extra, where none is
installed; a missing one alone is a row saying how to install it (checked in
tests/test_benchmarks_smoke.py).
"""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks import report
from benchmarks.__main__ import main

PEERS = {"torch eager": "torch", "jax jit": "jax", "mygrad": "mygrad"}
INSTALLED = [s for s, module in PEERS.items() if importlib.util.find_spec(module)]
HAVE_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.mark.skipif(not INSTALLED, reason="no peer installed: pip install '.[peers]'")
def test_every_installed_peer_has_step_and_inference_rows(tmp_path):
    systems = ",".join(["npcnn", *INSTALLED])
    args = ["--mode", "smoke", "--sections", "headline", "--systems", systems, "--no-plots"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    data = report.load(str(tmp_path))
    for system in ["npcnn", *INSTALLED]:
        for kind in ("train step", "inference"):
            r = report.find(data["results"], "headline", system, kind)
            assert r is not None and r["median_s"] > 0, (system, kind, data["notes"])
    table = "\n".join(report.peers_table(data))
    assert all(report.label(s, data["machine"]["peers"]) in table for s in INSTALLED)


@pytest.mark.skipif(not HAVE_TF, reason="TensorFlow is not installed: pip install '.[tf]'")
def test_tensorflow_rows(tmp_path):
    systems = "npcnn,tf eager,tf function"
    args = ["--mode", "smoke", "--sections", "headline,adam", "--systems", systems]
    assert main([*args, "--no-plots", "--out", str(tmp_path)]) == 0
    res = report.load(str(tmp_path))["results"]
    for section, kind in (("headline", "train step"), ("headline", "inference"), ("adam", None)):
        for system in ("tf eager", "tf function"):
            assert report.find(res, section, system, kind) is not None, (section, system)
