"""Training and evaluation: the tutorial's loop, in NumPy.

The heart of it is :func:`train_step`, the whole of learning::

    probs = model.forward(x)                                  # predict
    loss, cache = sparse_categorical_crossentropy_forward(probs, labels, reduction="sum")
    model.backward(sparse_categorical_crossentropy_backward(1.0, cache))  # dL/dw for every w
    optimizer.apply_gradients(zip(model.grads, model.params)) # step downhill

:func:`fit` wraps it in what a long run needs: the tutorial's random batches,
a progress bar, evaluation, checkpoints written atomically (every
``save_every`` steps, at each epoch end, at the end and on Ctrl-C) and exact
resumption: a run killed outright (SIGKILL, OOM, a power cut) resumes from its
last checkpoint and ends bit for bit where a run never killed ends (Dropout's
generators included), redoing at most ``save_every`` steps. ``fit`` drives any
:class:`Learner` -- an object with ``train_step``, ``predict``,
``named_params``/``set_weights`` and optimizer state -- so ``tfcnn train`` runs it too.

A run whose loss becomes NaN or inf stops with :class:`TrainingDiverged` (a ``FloatingPointError``)
and never writes the diverged weights over ``config.save``: the last good checkpoint stays as
it was, and the diverged state goes beside it to ``config.save + ".diverged.npz"``.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .backend import to_device, to_numpy
from .bars import progress_bar
from .checkpoint import load_checkpoint, save_checkpoint, training_meta, weights_for
from .curves import AccuracyCurve, check_curve_settings
from .inputs import evaluate, images_to_inputs, outputs_probabilities
from .modelfile import check_architecture
from .more_layers import generator_states, set_generator_states
from .ops import sparse_categorical_crossentropy_backward, sparse_categorical_crossentropy_forward
from .optimizers import Adam, check_hyperparameter
from .schedules import learning_rate_schedule
from .validation import check_bool, non_negative_int, positive_int
from .zoo import build_model


@dataclass
class TrainConfig:
    """Settings of a run; the defaults are the tutorial's."""

    dataset: str = "mnist"
    network: str = "seed"  # --model: npcnn.zoo.MODELS, 'seed' (the tutorial's) or 'modern'
    data_dir: str | None = None
    epochs: int = 5
    steps: int | None = None  # overrides epochs
    batch_size: int = 50
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # or 'cosine', to 0 over decay_steps (npcnn.schedules)
    decay_steps: int | None = None  # None: the whole run (run_train sets it from the data)
    seed: int = 0
    dtype: str = "float32"
    eval_batch_size: int = 1000
    eval_every_epoch: bool = False
    monitor_every: int | None = None  # held-out accuracy every N steps: curves.AccuracyCurve
    monitor_size: int = 1000  # ... on the first N test images
    save: str | None = None
    save_every: int = 1000  # also checkpoint every N steps (0: only at epoch ends, end, Ctrl-C)
    resume: str | None = None
    plots: str | None = None
    device: str = "cpu"
    kernels: str = "fast"  # 'ops': the readable reference ops (same numbers up to rounding)
    limit_train: int | None = None  # train on the first N images only (quick runs, tests)
    limit_test: int | None = None


DIVERGED_SUFFIX = ".diverged.npz"  # where a diverged run's state goes, beside config.save


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or inf; ``diverged_path`` is where that state was saved (or None)."""

    def __init__(self, message, step, diverged_path=None):
        super().__init__(message)
        self.step, self.diverged_path = step, diverged_path


@runtime_checkable
class Learner(Protocol):
    """What :func:`fit` drives: a model and its optimizer, whatever the framework.

    :class:`NumpyLearner` (npcnn) and ``tfcnn.cli.TFLearner`` (TensorFlow) are
    the two there are. Arrays crossing this interface are host NumPy arrays.
    Optional: ``input_shape`` (how images become inputs, ``npcnn.inputs``) and
    ``architecture()`` (``Sequential.get_config()``: checkpoints carry it).
    """

    name: str  # 'npcnn', 'tfcnn': recorded in checkpoints

    def train_step(self, x, labels) -> float:
        """One optimizer step on ``x`` (N, *input_shape), int ``labels`` (N,); the summed loss."""

    def predict(self, x, batch_size=None):
        """Class scores (N, classes) for ``x``: probabilities or logits."""

    def named_params(self) -> list:
        """[(name, host array)] in npcnn's order: conv1/kernel, conv1/bias, ..."""

    def set_weights(self, weights) -> None:
        """Load arrays in :meth:`named_params` order (atomic: all or nothing)."""

    def optimizer_state(self) -> dict:
        """{"iterations": array, "m_0": ..., "v_0": ...} of host arrays."""

    def set_optimizer_state(self, state) -> None:
        """Restore :meth:`optimizer_state`'s dict."""


def check_config(config: TrainConfig) -> None:
    """Raise ``ValueError`` naming the first setting of ``config`` that cannot work."""
    for name in ("epochs", "batch_size", "eval_batch_size"):
        positive_int(getattr(config, name), name)
    for name in ("steps", "decay_steps", "limit_train", "limit_test"):
        if getattr(config, name) is not None:
            positive_int(getattr(config, name), name)
    non_negative_int(config.seed, "seed")
    non_negative_int(config.save_every, "save_every")
    check_bool(config.eval_every_epoch, "eval_every_epoch")
    check_curve_settings(config.monitor_every, config.monitor_size)
    learning_rate_schedule(config.lr_schedule, config.learning_rate, config.decay_steps or 1)
    check_hyperparameter(config.learning_rate, "learning_rate")  # a finite number > 0


def train_step(model, optimizer, x, labels):
    """One step of the tutorial's loop; returns the summed loss of the batch."""
    out = model.forward(x, training=True)  # probabilities, or logits (no softmax at the end)
    from_logits = not outputs_probabilities(model)
    loss, cache = sparse_categorical_crossentropy_forward(out, labels, from_logits, "sum")
    dloss = sparse_categorical_crossentropy_backward(1.0, cache)  # dL/dL = 1
    model.backward(dloss, need_dx=False)  # fills model.grads; images need no dL/dx
    optimizer.apply_gradients(zip(model.grads, model.params))
    return loss


class NumpyLearner:
    """npcnn's model and optimizer behind the interface :func:`fit` drives."""

    name = "npcnn"

    def __init__(self, model, optimizer, device="cpu"):
        self.model, self.optimizer = model, optimizer
        self.xp = np
        if device == "gpu":
            from .backend import require_cupy

            self.xp = require_cupy()
            model.to(self.xp)

    def train_step(self, x, labels) -> float:
        x, labels = to_device(x, self.xp), to_device(labels, self.xp)
        return float(train_step(self.model, self.optimizer, x, labels))

    def predict(self, x, batch_size=None):
        return to_numpy(self.model.predict(to_device(x, self.xp), batch_size))

    @property
    def input_shape(self):
        return self.model.input_shape

    def architecture(self) -> dict:
        return self.model.get_config()

    def named_params(self):
        return [(name, to_numpy(p)) for name, p in self.model.named_weights()]

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def optimizer_state(self) -> dict:  # with the Dropout layers' generators
        return {**self.optimizer.get_state(), **generator_states(self.model.layers)}

    def set_optimizer_state(self, state):
        self.optimizer.set_state(set_generator_states(self.model.layers, state), self.model.params)


def make_numpy_learner(c: TrainConfig) -> NumpyLearner:
    model = build_model(c.network, seed=c.seed, dtype=c.dtype, kernels=c.kernels)
    learning_rate = learning_rate_schedule(c.lr_schedule, c.learning_rate, c.decay_steps)
    return NumpyLearner(model, Adam(learning_rate, kernels=c.kernels), c.device)


class _DeferredInterrupt:
    """Turns the first Ctrl-C into a flag checked between steps, so a checkpoint
    is always taken at a step boundary; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _diverged(what, step, config, save_aside) -> TrainingDiverged:
    """The error for a run that diverged at ``step``; saves its state aside if it can."""
    message = f"training diverged: {what} at step {step}"
    hint = "try a smaller --learning-rate"
    if not config.save:
        return TrainingDiverged(f"{message} ({hint})", step)
    kept = (
        f"{config.save} keeps the last good checkpoint"
        if os.path.exists(config.save)
        else f"nothing was saved to {config.save}"
    )
    aside = config.save + DIVERGED_SUFFIX
    try:
        save_aside(aside)
    except OSError as exc:  # the good checkpoint matters, the diverged state does not
        aside, where = None, f"; could not save the diverged state ({exc})"
    else:
        where = f"; the diverged state is in {aside}"
    return TrainingDiverged(f"{message}; {kept}{where} ({hint})", step, aside)


class _Run:
    """One training run's state -- its step, history and batch sampler -- and
    how it resumes from and saves itself to checkpoints."""

    def __init__(self, learner, config: TrainConfig, log):
        self.learner, self.config, self.log = learner, config, log
        self.rng = np.random.default_rng(config.seed)
        self.step, self.history = 0, {"loss": [], "eval": []}

    def resume(self):
        """Load ``config.resume``: weights, optimizer state, sampler state, step, history.

        All or nothing: the whole checkpoint is read and checked first, and if
        the learner still refuses a part of it, what was already restored is
        put back, so a failed resume leaves the learner and the run unchanged.
        """
        config, learner = self.config, self.learner
        ckpt = load_checkpoint(config.resume)
        meta = training_meta(ckpt, config.resume)
        if self.architecture() is not None:  # the checkpoint's model must be this one
            check_architecture(ckpt["architecture"], self.architecture(), config.resume)
        names = [(name, w.shape) for name, w in learner.named_params()]
        weights = weights_for(names, ckpt["weights"], config.resume)
        try:  # on a scratch generator: ours changes only once everything else has
            np.random.default_rng().bit_generator.state = ckpt["rng"]
        except (TypeError, ValueError, KeyError):
            raise ValueError(f"{config.resume} holds no valid batch-sampler state") from None
        previous = learner.optimizer_state()
        learner.set_optimizer_state(ckpt["optimizer"])  # checked, all or nothing
        try:
            learner.set_weights(weights)  # checked, all or nothing
        except BaseException:
            learner.set_optimizer_state(previous)
            raise
        self.rng.bit_generator.state = ckpt["rng"]
        self.step, self.history = meta["step"], meta["history"]
        for key in ("dataset", "batch_size", "dtype", "learning_rate", "lr_schedule"):
            saved, now = meta["config"].get(key), getattr(config, key)
            if saved != now:
                self.log(f"warning: resuming a run made with {key}={saved!r}, now {now!r}")
        self.log(f"resumed from {config.resume} at step {self.step}")

    def architecture(self):
        """The learner's ``Sequential.get_config()``, if it has one (checkpoints carry it)."""
        describe = getattr(self.learner, "architecture", None)
        return describe() if describe is not None else None

    def write(self, path, named, diverged=False):
        meta = {
            "step": self.step,
            "history": self.history,
            "config": asdict(self.config),
            "framework": self.learner.name,
            "time": time.time(),
        }
        if diverged:
            meta["diverged"] = True
        state = self.learner.optimizer_state()
        rng_state = self.rng.bit_generator.state
        save_checkpoint(path, named, state, rng_state, meta, architecture=self.architecture())

    def diverged(self, what, named) -> TrainingDiverged:
        """The error to raise; the diverged state goes aside, never over ``config.save``."""
        save_aside = functools.partial(self.write, named=named, diverged=True)
        return _diverged(what, self.step, self.config, save_aside)

    def checkpoint(self):
        """Save to config.save, unless a weight is NaN or inf: then stop, keeping the good one."""
        if self.config.save:
            named = self.learner.named_params()
            bad = [name for name, w in named if not np.all(np.isfinite(w))]
            if bad:
                raise self.diverged(f"{bad[0]} holds NaN or inf", named)
            self.write(self.config.save, named)


def total_steps(config: TrainConfig, train_size: int) -> int:
    """The run's length: ``config.steps``, else ``config.epochs`` epochs of ``train_size``."""
    steps_per_epoch = max(train_size // config.batch_size, 1)
    return config.steps if config.steps is not None else steps_per_epoch * config.epochs


def fit(learner: Learner, data, config: TrainConfig, log=print):
    """Train ``learner`` on ``data`` = ((x_train, y_train), (x_test, y_test)) as the tutorial does.

    Each step draws ``batch_size`` random indices with replacement (the
    tutorial's ``np.random.randint``), from a generator seeded by
    ``config.seed`` whose state is checkpointed, so resuming continues the
    very same sequence of batches. Returns a dict with the history, the test
    accuracy and the confusion matrix.

    Raises :class:`TrainingDiverged` when the loss becomes NaN or inf (the
    module docstring says what is kept). With ``config.save`` set, a whole
    checkpoint (weights, optimizer and sampler state, step, history) is written
    every ``config.save_every`` steps (0: not on a step count), at each epoch
    end, at the end and on Ctrl-C; ``config.resume`` continues the same run.
    """
    check_config(config)
    (x_train, y_train), test = data
    if len(x_train) == 0:
        raise ValueError("the training set is empty")
    steps_per_epoch = max(len(x_train) // config.batch_size, 1)
    total = total_steps(config, len(x_train))
    run = _Run(learner, config, log)
    if config.resume:
        run.resume()
    log(
        f"{learner.name}: training on {len(x_train)} images, {total} steps of "
        f"{config.batch_size} ({total * config.batch_size / len(x_train):.2f} epochs), "
        f"dtype {config.dtype}"
    )
    curve = AccuracyCurve.start(run, test, total, evaluate)
    _train(run, (x_train, y_train), test, total, steps_per_epoch, curve)
    accuracy, confusion = evaluate(learner, *test, config.eval_batch_size, config.dtype)
    evals = run.history["eval"]
    if not (evals and evals[-1][0] == run.step):  # resuming a finished run: evaluated already
        evals.append([run.step, accuracy])
    run.checkpoint()
    return {"history": run.history, "accuracy": accuracy, "confusion": confusion, "steps": run.step}


def _train(run: _Run, train, test, total, steps_per_epoch, curve=None):
    """The loop: random batches until ``total`` steps, with progress, evaluation and checkpoints."""
    (x_train, y_train), config, learner = train, run.config, run.learner
    progress = progress_bar(total, f"{learner.name} train", initial=run.step, unit="step")
    images_seen = 0
    with _DeferredInterrupt() as interrupt:
        while run.step < total:
            idx = run.rng.integers(0, len(x_train), config.batch_size)
            x = images_to_inputs(x_train[idx], config.dtype, getattr(learner, "input_shape", None))
            loss = learner.train_step(x, y_train[idx].astype(np.int64))
            run.step += 1
            images_seen += config.batch_size
            run.history["loss"].append(loss)
            recent = run.history["loss"][-100:]
            rate = images_seen / max(progress.format_dict["elapsed"], 1e-9)
            postfix = f"loss {sum(recent) / len(recent):.4f}, {rate:.0f} img/s"
            postfix += curve.after_step(total) if curve else ""
            progress.set_postfix_str(postfix, refresh=False)
            progress.update()
            if not np.isfinite(loss):
                progress.close()
                raise run.diverged(f"the loss became {loss}", learner.named_params())
            epoch_end = run.step % steps_per_epoch == 0
            if epoch_end and config.eval_every_epoch and run.step < total:
                acc, _ = evaluate(learner, *test, config.eval_batch_size, config.dtype)
                run.history["eval"].append([run.step, acc])
                run.log(
                    f"\nstep {run.step} (epoch {run.step // steps_per_epoch}): "
                    f"test accuracy {acc:.4f}"
                )
            periodic = config.save_every and run.step % config.save_every == 0
            if epoch_end or periodic or run.step == total:
                run.checkpoint()
            if interrupt.requested:
                run.checkpoint()
                progress.close()
                where = f"; checkpoint saved to {config.save}" if config.save else ""
                run.log(f"interrupted at step {run.step}{where}")
                raise KeyboardInterrupt
    progress.close()
