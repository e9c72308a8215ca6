"""``tests/`` and ``parity_tests/`` register the same Hypothesis profiles.

Hypothesis keeps one global registry of profiles, and a run of
``pytest tests parity_tests`` loads both conftests: whichever registers last
would silently win if their values differed. This test reads the
``settings.register_profile(...)`` calls of both conftests from their source
(``parity_tests/conftest.py`` imports TensorFlow, so it is parsed, not
imported) and requires the same profiles with the same values.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
CONFTESTS = [ROOT / "tests" / "conftest.py", ROOT / "parity_tests" / "conftest.py"]


def registered_profiles(path: Path) -> dict:
    """{profile name: {setting: value}} for each ``*.register_profile`` call in ``path``."""
    profiles = {}
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if not (is_call and node.func.attr == "register_profile"):
            continue
        name = ast.literal_eval(node.args[0])
        profiles[name] = {
            keyword.arg: eval(  # noqa: S307 -- our own literals and HealthCheck members
                compile(ast.Expression(keyword.value), str(path), "eval"),
                {"HealthCheck": HealthCheck},
            )
            for keyword in node.keywords
        }
    return profiles


def test_both_conftests_register_ci_and_dev_alike():
    ours, parity = (registered_profiles(path) for path in CONFTESTS)
    assert {"ci", "dev"} <= set(ours), ours
    assert ours == parity


def test_the_loaded_profile_has_the_registered_values():
    """Whatever order the conftests loaded in, 'ci' holds the values both register."""
    ci = settings.get_profile("ci")
    for name, value in registered_profiles(CONFTESTS[0])["ci"].items():
        actual = getattr(ci, name)
        if isinstance(value, list):  # a list of health checks; hypothesis keeps a tuple
            actual, value = set(actual), set(value)
        assert actual == value, name
