"""The Hypothesis profiles of the root ``conftest.py`` keep CI deterministic."""

from __future__ import annotations

import os

from hypothesis import settings


def test_ci_profile_is_derandomized_without_deadline():
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.deadline is None and ci.max_examples == 40


def test_dev_profile_explores_more_and_at_random():
    dev = settings.get_profile("dev")
    assert not dev.derandomize and dev.max_examples >= 500


def test_the_profile_named_by_the_environment_is_loaded():
    name = os.environ.get("NPCNN_HYPOTHESIS_PROFILE", "ci")
    assert settings.default.max_examples == settings.get_profile(name).max_examples
