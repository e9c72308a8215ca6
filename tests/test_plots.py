"""npcnn.plots: the training curves show learning, and say which data they used."""

from __future__ import annotations

import pytest


def test_the_accuracy_panel_is_a_curve_that_names_its_data(tmp_path, monkeypatch):
    figure = pytest.importorskip("matplotlib.figure")

    from npcnn import plots

    drawn = []
    savefig = figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        drawn.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(figure.Figure, "savefig", keep)
    history = {
        "loss": [115.0 - i for i in range(10)],
        "monitor": [[0, 0.1], [5, 0.6], [10, 0.9]],
        "monitor_data": "the first 20 of 30 test images",
        "eval": [[10, 0.85]],
        "eval_data": "all 30 test images",
    }
    path = plots.plot_training_curves(history, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    accuracy = drawn[0].axes[1]
    curve, final = accuracy.get_lines()
    assert list(curve.get_xdata()) == [0, 5, 10] and list(final.get_xdata()) == [10]
    legend = [text.get_text() for text in accuracy.get_legend().get_texts()]
    assert legend == [
        "along the way: the first 20 of 30 test images",
        "evaluation: all 30 test images",
    ]
    assert accuracy.get_ylim()[0] == 0  # chance looks like chance


def test_a_history_without_a_curve_still_plots(tmp_path):
    """Checkpoints written without the curve (or with --monitor-every 0)."""
    pytest.importorskip("matplotlib")
    from npcnn import plots

    history = {"loss": [3.0, 2.0, 1.0], "eval": [[3, 0.5]]}
    assert plots.plot_training_curves(history, tmp_path / "c.png").exists()
