"""The mutation script's bugs still fit the source (``python -m parity_tests.mutants``).

Each mutant is an exact text substitution that must match exactly once; when
the code moves on, the script would report the mutant STALE at run time. This
test says so at once, without TensorFlow and without running the parity suite.
"""

from __future__ import annotations

import pytest

from parity_tests import mutants as mut


@pytest.mark.parametrize("mutant", mut.MUTANTS, ids=lambda m: m.name)
def test_old_text_occurs_exactly_once(mutant):
    count = mut.occurrences(mutant)
    assert count == 1, f"{mutant.name}: old text occurs {count} times in {mutant.path}"


def test_mutants_are_distinct_real_changes():
    names = [m.name for m in mut.MUTANTS]
    assert len(names) == len(set(names)) >= 12
    for m in mut.MUTANTS:
        assert m.old != m.new and m.old and m.tier and m.description, m.name
        assert m.path.split("/")[0] in mut.PACKAGES, m.name  # only the copied packages


def test_mutate_changes_the_copy_and_refuses_drifted_source(tmp_path):
    mutant = mut.MUTANTS[0]
    target = tmp_path / mutant.path
    target.parent.mkdir(parents=True)
    original = (mut.ROOT / mutant.path).read_text(encoding="utf-8")
    target.write_text(original, encoding="utf-8")
    mut.mutate(mutant, tmp_path)
    assert target.read_text(encoding="utf-8") == original.replace(mutant.old, mutant.new)
    with pytest.raises(mut.StaleMutant):  # applied once, the old text is gone
        mut.mutate(mutant, tmp_path)
    assert (mut.ROOT / mutant.path).read_text(encoding="utf-8") == original  # checkout untouched


def test_the_guard_plugin_compiles():
    compile(mut.GUARD_SOURCE, mut.GUARD + ".py", "exec")


def test_list_runs_nothing(capsys):
    assert mut.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(m.name in out for m in mut.MUTANTS)
