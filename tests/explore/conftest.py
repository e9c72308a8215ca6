"""A running explorer for the tests: the seed network (untrained, seeded) on the
readable ops, served on a free port of 127.0.0.1 in a thread."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

import npcnn
from npcnn.explore import Explorer, make_server


@pytest.fixture(scope="module")
def explorer_url():
    samples = [{"image": np.eye(28).tolist(), "label": 7}]
    server = make_server(Explorer(npcnn.seed_cnn(seed=3, kernels="ops"), samples))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def request(url, path, body=None, raw=None):
    """(status, JSON answer) of GET ``path`` (no body) or POST ``path`` with ``body``."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can see a failure."""
    outcome = yield
    setattr(item, f"report_{call.when}", outcome.get_result())
