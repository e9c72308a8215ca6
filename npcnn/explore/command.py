"""``npcnn explore [MODEL] [--port N] [--no-browser]`` (wired into ``npcnn/cli.py``).

Loads MODEL (any model file or checkpoint npcnn can load); without one, the
trained tutorial network the README's first command saves (``runs/seed_cnn.npz``);
without that, a small one trained here first (``SMALL_STEPS`` steps, with a
progress bar) and kept at ``runs/explore_cnn.npz`` for next time. Then serves
the page on 127.0.0.1 and opens the browser.
"""

from __future__ import annotations

import os
import sys

DEFAULT_MODELS = ("runs/seed_cnn.npz", "runs/explore_cnn.npz")
SMALL_STEPS = 300  # a minute or two on a laptop core; about 95% on MNIST
SAMPLES = 12  # test images offered on the page, when the dataset is here


def add_parser(sub) -> None:
    """Add ``explore`` to the subparsers ``sub`` of ``npcnn``."""
    from ..validation import COUNT

    e = sub.add_parser(
        "explore",
        help="see the network think: every layer, one cell's sum, the gradients, in the browser",
        description="Serve a page on 127.0.0.1 that runs a model on a digit you draw: "
        "every layer's output, any cell of a feature map explained as the sum of its "
        "window times the kernel, and the gradient of a class's loss at every layer.",
    )
    e.add_argument("model", nargs="?", default=None,
                   help=f"a model file or checkpoint (default: {' or '.join(DEFAULT_MODELS)}, "
                   "trained first when neither exists)")  # fmt: skip
    e.add_argument("--port", type=COUNT, default=8000, help="the port (default 8000)")
    e.add_argument("--no-browser", action="store_true", help="print the address only")
    e.add_argument("--data-dir", default=None, help="MNIST's folder (for samples and training)")


def find_or_train(path, data_dir, log=print):
    """The model file to explore: ``path``, else the first default that exists, else
    a small seed network trained now and saved at the last default."""
    if path is not None:
        if not os.path.isfile(path):
            raise ValueError(f"no model file at {path}")
        return path
    for candidate in DEFAULT_MODELS:
        if os.path.isfile(candidate):
            return candidate
    from ..datasets.mnist import load_mnist
    from ..train import TrainConfig, fit, make_numpy_learner

    target = DEFAULT_MODELS[-1]
    log(f"no trained model yet: training a small one ({SMALL_STEPS} steps), kept at {target}")
    config = TrainConfig(steps=SMALL_STEPS, save=target, limit_test=1000, save_every=0)
    fit(make_numpy_learner(config), load_mnist(data_dir), config, log=log)
    return target


def test_samples(data_dir, count=SAMPLES) -> list:
    """The first ``count`` MNIST test images as lists in [0, 1] with their labels, or []
    when the dataset is not on this machine (nothing is downloaded for samples)."""
    from ..datasets.mnist import load_mnist

    try:
        _, (images, labels) = load_mnist(data_dir or os.environ.get("NPCNN_DATA_DIR"))
    except (OSError, ValueError):
        return []
    return [{"image": (images[i] / 255.0).round(4).tolist(), "label": int(labels[i])}
            for i in range(min(count, len(images)))]  # fmt: skip


def run(args) -> int:
    """Serve until Ctrl-C; exit status 0, or 2 for a missing or unreadable model."""
    from ..modelfile import load_model
    from .server import Explorer, make_server

    try:
        path = find_or_train(args.model, args.data_dir)
        model = load_model(path, kernels="ops")  # the readable tier: the page links its lines
        explorer = Explorer(model, test_samples(args.data_dir))
        server = make_server(explorer, args.port)
    except (ValueError, OSError) as exc:
        print(f"npcnn: error: {exc}", file=sys.stderr)
        return 2
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"npcnn explore: {path} at {url} (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
