"""The accuracy curve of a training run: how well the network does on images
it never trains on, measured along the way, so that ``npcnn train --plots``
draws a curve and not a single point at the end.

The held-out images are the first ``monitor_size`` test images (1000 by
default): evaluating them costs one forward pass each time, no training. The
curve only reports; nothing is chosen by it (no early stopping), so measuring
it on test images leaks nothing into training. ``history["monitor_data"]``
says which images it used, and the plots' legend repeats it.
"""

from __future__ import annotations

import numpy as np

from .validation import positive_int

POINTS = 20  # about this many points a run, by default, when plots are drawn


def check_curve_settings(every, size) -> None:
    """``monitor_every``: None (the default rule) or an int >= 0 (0: no curve);
    ``monitor_size``: an int > 0. ``ValueError`` naming the setting otherwise."""
    if every is not None and (
        isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0
    ):
        raise ValueError(f"monitor_every must be an int >= 0 or None, got {every!r}")
    positive_int(size, "monitor_size")


class AccuracyCurve:
    """Records the accuracy on a held-out subset into ``run.history["monitor"]``
    as ``[step, accuracy]`` pairs: every ``every`` steps and at the last one."""

    def __init__(self, run, images, labels, every, evaluate):
        self.run, self.images, self.labels, self.every = run, images, labels, every
        self.evaluate = evaluate  # train.evaluate: (learner, images, labels, batch, dtype)

    @classmethod
    def start(cls, run, test, total, evaluate):
        """The curve of ``run`` over ``total`` steps, or None when it draws none.

        ``run.config.monitor_every`` None means about ``POINTS`` points when
        plots are drawn and none otherwise. Logs which images it uses and, on a
        fresh run, records step 0: the untrained network, near chance.
        """
        config, (images, labels) = run.config, test
        every = config.monitor_every
        if every is None:
            every = max(total // POINTS, 1) if config.plots else 0
        if every == 0 or len(labels) == 0:
            return None
        size = min(config.monitor_size, len(labels))
        what = f"the first {size} of {len(labels)} test images"
        run.log(f"accuracy curve: every {every} steps on {what} (held out from training)")
        run.history["monitor_data"] = what
        run.history["eval_data"] = f"all {len(labels)} test images"
        run.history.setdefault("monitor", [])
        curve = cls(run, images[:size], labels[:size], every, evaluate)
        if run.step == 0:
            curve.record()
        return curve

    def record(self):
        run = self.run
        accuracy, _ = self.evaluate(
            run.learner, self.images, self.labels, run.config.eval_batch_size, run.config.dtype
        )
        run.history["monitor"].append([run.step, accuracy])

    def after_step(self, total) -> str:
        """Record if this step is due; the latest point, for the progress bar."""
        if self.run.step % self.every == 0 or self.run.step == total:
            self.record()
        points = self.run.history["monitor"]
        return f", held-out accuracy {points[-1][1]:.3f}" if points else ""
