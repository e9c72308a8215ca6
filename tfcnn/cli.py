"""``python -m tfcnn train``: the tutorial CNN trained by TensorFlow, run for run like npcnn.

Same options, same loop (``npcnn.train.fit``: the same random batches for the
same ``--seed``, progress bar, checkpoints, resume, evaluation and plots), same
output. What differs is the learner: :class:`TFLearner` runs
:class:`tfcnn.SeedCNN` (``--model seed``) or the Keras twin of another
``npcnn.zoo`` network (``--model modern``: ``tfcnn.from_npcnn``, starting from
the very weights npcnn starts from for the same ``--seed``) with Keras's Adam
and Keras's learning-rate schedule. Extra options:

- ``--eager``: run the step eagerly, as the tutorial does (default: ``tf.function``);
- ``--loss-path``: 'clipped-probs' (default; npcnn's loss), 'logits' or
  'tutorial' (see :mod:`tfcnn.training`).

Checkpoints have npcnn's format, so ``npcnn evaluate --weights`` reads them.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


class TFLearner:
    """SeedCNN (or a zoo network's Keras twin) + Keras Adam behind the interface
    ``npcnn.train.fit`` drives."""

    name = "tfcnn"

    def __init__(self, config, loss_path="clipped-probs", jit=True):
        from npcnn.schedules import learning_rate_schedule
        from npcnn.zoo import build_model

        from .convert import from_npcnn
        from .model import SeedCNN
        from .training import make_optimizer, make_train_step

        if config.device == "gpu":
            raise ValueError("--device gpu is npcnn's CuPy path; TensorFlow picks its GPU itself")
        twin = build_model(config.network, seed=config.seed, dtype=config.dtype)
        if config.network == "seed":
            self.model = SeedCNN(seed=config.seed, dtype=config.dtype)
        else:  # the same layers, and the same initial weights as npcnn's for this seed
            self.model = from_npcnn(twin)
        rate = learning_rate_schedule(config.lr_schedule, config.learning_rate, config.decay_steps)
        self.optimizer = make_optimizer(rate)
        self.optimizer.build(self.model.trainable_variables)
        self.step = make_train_step(self.model, self.optimizer, loss_path=loss_path, jit=jit)
        # parameter names and architecture in npcnn's, so checkpoints are interchangeable
        self.names = [name for name, _ in twin.named_weights()]  # moving statistics too
        self.npcnn_config, self.input_shape = twin.get_config(), twin.input_shape

    def architecture(self) -> dict:
        """npcnn's description of the network (``npcnn.zoo.build_model(...).get_config()``)."""
        return self.npcnn_config

    def train_step(self, x, labels) -> float:
        return float(self.step(x, labels))

    def predict(self, x, batch_size=1000):
        from .training import predict_probs

        return predict_probs(self.model, x, batch_size)

    def named_params(self):
        return list(zip(self.names, self.model.get_weights()))

    def set_weights(self, weights):
        """All or nothing: every shape is checked before Keras copies any weight."""
        weights = [np.asarray(w) for w in weights]
        current = self.model.get_weights()
        if len(weights) != len(current):
            raise ValueError(f"expected {len(current)} weight arrays, got {len(weights)}")
        for name, w, c in zip(self.names, weights, current):
            if w.dtype.kind not in "biuf":
                raise ValueError(f"weight for {name} must be numeric, got dtype {w.dtype}")
            if w.shape != c.shape:
                raise ValueError(f"weight for {name} has shape {w.shape}, the model has {c.shape}")
        self.model.set_weights([w.astype(c.dtype) for w, c in zip(weights, current)])

    def _slots(self, kind):
        return [v for v in self.optimizer.variables if v.path.endswith("_" + kind)]

    def optimizer_state(self) -> dict:
        state = {"iterations": np.array(int(self.optimizer.iterations.numpy()))}
        for i, (m, v) in enumerate(zip(self._slots("momentum"), self._slots("velocity"))):
            state[f"m_{i}"], state[f"v_{i}"] = np.asarray(m.numpy()), np.asarray(v.numpy())
        return state

    def set_optimizer_state(self, state):
        """Restore Adam's state; checked like ``npcnn.Adam.set_state`` before anything changes."""
        from npcnn.optimizers import Adam as NumpyAdam

        slots = list(zip(self._slots("momentum"), self._slots("velocity")))
        checked = NumpyAdam()  # checks everything and casts the moments, or ValueError
        checked.set_state(state, [np.asarray(m.numpy()) for m, _ in slots])
        self.optimizer.iterations.assign(checked.iterations)
        for i, (m, v) in enumerate(slots):
            m.assign(checked.m[i] if checked.m else np.zeros(m.shape, m.dtype))
            v.assign(checked.v[i] if checked.v else np.zeros(v.shape, v.dtype))


def main(argv=None) -> int:
    from npcnn.cli import EXIT_INTERRUPTED, build_parser, check_paths, run_command, run_train

    from .training import LOSS_PATHS

    parser = build_parser(prog="tfcnn", framework="TensorFlow (Keras)")
    train = parser._subparsers._group_actions[0].choices["train"]
    train.add_argument(
        "--eager", action="store_true", help="run eagerly like the tutorial (default: tf.function)"
    )
    train.add_argument(
        "--loss-path",
        default="clipped-probs",
        choices=LOSS_PATHS,
        help="which cross-entropy (see tfcnn.training); default: npcnn's",
    )
    args = parser.parse_args(argv)

    def command():
        check_paths(args)
        result = run_train(
            args, lambda config: TFLearner(config, args.loss_path, jit=not args.eager)
        )
        return EXIT_INTERRUPTED if result.get("interrupted") else 0

    return run_command("tfcnn", command)
