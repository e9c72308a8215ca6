"""Mutation check: plant known bugs in a copy of npcnn, one at a time; the parity suite must fail.

Run from the repository root::

    python -m parity_tests.mutants              # every mutant, one at a time
    python -m parity_tests.mutants --jobs 2     # two mutants at once
    python -m parity_tests.mutants --list       # what the mutants are
    python -m parity_tests.mutants --only relu-grad-at-zero,xent-no-clip
    python -m parity_tests.mutants --markdown   # the table as Markdown

Each mutant is one exact text substitution (``old`` -> ``new``) in one file
of ``npcnn/``: a bug that is known to matter for parity with TensorFlow/Keras
(where 'same' puts its odd zero, which maximum a tie routes to, where Adam's
epsilon sits, ...). ``old`` must occur exactly once in the current source;
if it does not (the code moved on), the mutant is reported as STALE, an
error, never as caught (``tests/test_mutants.py`` checks this without running
anything).

How a mutant is run, without touching your checkout:

1. ``npcnn/``, ``tfcnn/``, the test folder (``--tests``, default
   ``parity_tests``) and ``pyproject.toml`` are copied into a fresh temporary
   directory, and the substitution is made in the copy;
2. ``python -m pytest -x -q -p no:cacheprovider <tests>`` runs with the copy
   as its working directory, the copy first on ``PYTHONPATH`` and
   ``NPCNN_HYPOTHESIS_PROFILE=ci`` (derandomized: the same examples each run),
   so every ``sys.path`` entry pytest adds (rootdir, ``pythonpath = ["."]``)
   is the copy too; the editable install's finder comes after all of them;
3. a small pytest plugin (written into the copy, loaded with ``-p``) records
   the first failing test and, at the end, where every imported ``npcnn`` and
   ``tfcnn`` module came from. A module from outside the copy aborts the whole
   run: a mutant that was never imported would pass as MISSED -- or worse, an
   unmutated module could hide it. Before the mutants, ``python -c "import
   npcnn, tfcnn"`` in the same environment must also print the copy's files.

The suite first runs once unmutated on a copy; it must pass (else: abort).
Then a mutant is *caught* if pytest exits 1 (a test failed) and MISSED if it
exits 0. Exit status: 0 only if every selected mutant was caught; 1 if one
was missed, stale or errored; 2 if the setup (copy, baseline) failed.

Tiers: npcnn has two implementations of the ops, the readable ``npcnn/ops``
and the fast ``npcnn/fast`` (the default of layers and models, which also
fuses Conv2D(relu) + MaxPool2D in ``npcnn/fast/fused.py``). Where the fast
tier re-uses a readable piece (ReLU, softmax, cross-entropy, dense
and max-pool backward, padding), one mutant hits both; where the code
differs, each tier gets its own mutant. ``tier`` says which.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository (checkout) root
PACKAGES = ("npcnn", "tfcnn")  # copied, and must be imported from the copy
GUARD = "_npcnn_mutant_guard"  # the pytest plugin's module name (in the copy)


@dataclass(frozen=True)
class Mutant:
    """One planted bug: replace ``old`` (which must occur exactly once) by ``new`` in ``path``."""

    name: str
    path: str  # relative to the repository root
    old: str
    new: str
    tier: str  # 'ops+fast' (shared code), 'ops', 'fast', 'fused' (fast tier's block), 'model'
    description: str


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "same-pad-top-left",
        "npcnn/ops/padding.py",
        "    return before, total - before\n",
        "    return total - before, before\n",
        "ops+fast",
        "'same' padding: the odd extra cell goes top/left instead of bottom/right",
    ),
    Mutant(
        "conv-same-split-ops",
        "npcnn/ops/conv2d.py",
        "    pads = padding_amounts((height, width), (kh, kw), strides, padding)\n",
        "    pads = tuple(p[::-1] for p in padding_amounts((height, width), (kh, kw), strides,"
        " padding))\n",
        "ops",
        "conv only: 'same' split the wrong way (even kernel at stride 1: extra row on top)",
    ),
    Mutant(
        "conv-same-split-fast",
        "npcnn/fast/conv2d.py",
        "    pads = padding_amounts((height, width), (kh, kw), strides, padding)\n",
        "    pads = tuple(p[::-1] for p in padding_amounts((height, width), (kh, kw), strides,"
        " padding))\n",
        "fast",
        "conv only: 'same' split the wrong way (even kernel at stride 1: extra row on top)",
    ),
    Mutant(
        "relu-grad-at-zero",
        "npcnn/ops/relu.py",
        "return xp.where(y > 0, dy, 0)",
        "return xp.where(y >= 0, dy, 0)",
        "ops+fast",
        "ReLU gradient passes at x == 0 (TF: 0 there)",
    ),
    Mutant(
        "fused-relu-grad-at-zero",
        "npcnn/fast/fused.py",
        "mask = np.subtract(0, np.greater(y, 0).view(np.uint8), dtype=bits)",
        "mask = np.subtract(0, np.greater_equal(y, 0).view(np.uint8), dtype=bits)",
        "fused",
        "fused conv->pool->bias->ReLU: ReLU gradient passes where the pooled output is 0",
    ),
    Mutant(
        "maxpool-grad-last-max",
        "npcnn/ops/maxpool2d.py",
        "    for i, j in cache.taps:  # row-major order\n",
        "    for i, j in cache.taps[::-1]:  # row-major order\n",
        "ops+fast",
        "max-pool gradient goes to the last maximum of a tie, not the first",
    ),
    Mutant(
        "fused-pool-grad-last-max",
        "npcnn/fast/fused.py",
        "    for i, j in taps:  # row-major",
        "    for i, j in taps[::-1]:  # row-major",
        "fused",
        "fused block: pool gradient to the last maximum of a tie (of fl(z + b))",
    ),
    Mutant(
        "fused-ties-to-all",
        "npcnn/fast/fused.py",
        "            xp.logical_and(wins, unrouted, out=wins)  # ... and no earlier tap did\n",
        "",
        "fused",
        "fused block: pool gradient to every tied maximum (forgets which tap already won)",
    ),
    Mutant(
        "fused-ties-raw-z",
        "npcnn/fast/fused.py",
        "            xp.add(tap_view(z_part, i, j, strides, out_hw), b, out=z_plus_b)"
        "  # fl(z + b), this tap\n"
        "            xp.equal(z_plus_b, y_part, out=wins)  # this tap holds the maximum ...\n",
        "            xp.equal(tap_view(z_part, i, j, strides, out_hw), y_part - b, out=wins)\n",
        "fused",
        "fused block: winner found by comparing raw z with y - b, not fl(z + b) with y",
    ),
    Mutant(
        "maxpool-pad-zero-fast",
        "npcnn/fast/maxpool2d.py",
        "x_pad = pad_nhwc(x, pads, value=-xp.inf)",
        "x_pad = pad_nhwc(x, pads, value=0.0)",
        "fast",
        "max-pool 'same': padded cells hold 0 instead of -inf (they can win)",
    ),
    Mutant(
        "fused-pool-pad-zero",
        "npcnn/fast/fused.py",
        "z_pad = pad_nhwc(z, pads, value=-xp.inf)",
        "z_pad = pad_nhwc(z, pads, value=0.0)",
        "fused",
        "fused block, pool padding 'same': padded cells hold 0 instead of -inf",
    ),
    Mutant(
        "col2im-stride-ignored",
        "npcnn/ops/conv2d.py",
        "            view = tap_view(dx_pad, i, j, strides, out_hw)",
        "            view = tap_view(dx_pad, i, j, (1, 1), out_hw)",
        "ops",
        "col2im for stride > 1: taps scattered back with step 1 (identical at stride 1)",
    ),
    Mutant(
        "col2im-stride-ignored-fast",
        "npcnn/fast/conv2d.py",
        "                block = dx_pad[lo:hi, rows, ow * sw : ow * sw + kw, :]",
        "                block = dx_pad[lo:hi, rows, ow : ow + kw, :]",
        "fast",
        "fast col2im for column stride > 1: window blocks scattered with step 1",
    ),
    Mutant(
        "im2col-one-channel-taps-swapped-fast",
        "npcnn/fast/conv2d.py",
        "        cols_t[:, :, lo:hi] = windows.transpose(3, 4, 0, 1, 2)",
        "        cols_t[:, :, lo:hi] = windows.transpose(4, 3, 0, 1, 2)",
        "fast",
        "conv1's one-channel im2col: the taps (i, j) copied as (j, i), the window transposed",
    ),
    Mutant(
        "threads-first-piece-short",
        "npcnn/fast/threads.py",
        "work(cuts[k], cuts[k + 1])",
        "work(cuts[k], cuts[k + 1] - (k == 0))",
        "fast",
        "thread split: the last row of the first piece of every split pass is never computed",
    ),
    Mutant(
        "conv-bias-grad-axis-fast",
        "npcnn/fast/conv2d.py",
        "    db = column_sums(dy2)",
        "    db = dy.sum(axis=(0, 1))[0]",
        "fast",
        "conv bias gradient over the wrong axes: (N, H) summed, only column ow = 0 kept",
    ),
    Mutant(
        "column-sums-skip-first-row",
        "npcnn/fast/reduce.py",
        'np.einsum("ij->j", a)',
        'np.einsum("ij->j", a[1:])',
        "fast",
        "fast tier's bias gradients (conv, row-wise, dense): the first output position left out",
    ),
    Mutant(
        "dense-bias-grad-axis",
        "npcnn/ops/dense.py",
        "    db = dy.sum(axis=0)",
        "    db = dy.sum(axis=1)",
        "ops+fast",
        "dense bias gradient summed over the wrong axis ((N,), not (Dout,))",
    ),
    Mutant(
        "flatten-nchw",
        "npcnn/ops/flatten.py",
        "    return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape\n",
        "    y = (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x).reshape(x.shape[0], -1)\n"
        "    return y, x.shape\n",
        "ops+fast",
        "Flatten in NCHW (PyTorch) order instead of Keras's NHWC",
    ),
    Mutant(
        "reshape-layer-nchw",
        "npcnn/layers.py",
        "        return x.reshape(x.shape[0], *self.target_shape)\n",
        "        return (x.transpose(0, 3, 1, 2) if x.ndim == 4 else x).reshape("
        "x.shape[0], *self.target_shape)\n",
        "model",
        "Reshape layer (the seed CNN's 'flatten') in NCHW order",
    ),
    Mutant(
        "softmax-no-max",
        "npcnn/ops/softmax.py",
        "    e = xp.exp(z - z.max(axis=-1, keepdims=True))\n",
        "    e = xp.exp(z)\n",
        "ops+fast",
        "softmax without subtracting the row max (overflows only for large logits)",
    ),
    Mutant(
        "log-softmax-no-max",
        "npcnn/ops/softmax.py",
        "    shifted = z - z.max(axis=-1, keepdims=True)\n",
        "    shifted = z\n",
        "ops+fast",
        "the loss's log-softmax without subtracting the row max",
    ),
    Mutant(
        "xent-no-clip",
        "npcnn/ops/crossentropy.py",
        "clipped = xp.clip(y_pred, lo, hi)",
        "clipped = y_pred",
        "ops+fast",
        "cross-entropy from probabilities: no clip to [1e-7, 1 - 1e-7] before the log",
    ),
    Mutant(
        "xent-clip-bounds-swapped",
        "npcnn/ops/crossentropy.py",
        "        lo, hi = dtype(EPSILON), dtype(1.0 - EPSILON)\n",
        "        hi, lo = dtype(EPSILON), dtype(1.0 - EPSILON)\n",
        "ops+fast",
        "cross-entropy: clip bounds swapped (np.clip then returns the upper bound everywhere)",
    ),
    Mutant(
        "xent-clip-grad-exclusive",
        "npcnn/ops/crossentropy.py",
        "inside = (cache.y_pred >= lo) & (cache.y_pred <= hi)",
        "inside = (cache.y_pred > lo) & (cache.y_pred < hi)",
        "ops+fast",
        "cross-entropy: clip gradient 0 at the bounds (TF passes it: <=, >=)",
    ),
    Mutant(
        "adam-paper-epsilon",
        "npcnn/optimizers.py",
        "        eps = f(self.epsilon)\n",
        "        eps = f(self.epsilon) * np.sqrt(f(1) - b2**t)\n",
        "ops+fast",
        "Adam as in the paper: m_hat / (sqrt(v_hat) + eps), not Keras's alpha*m/(sqrt(v) + eps)",
    ),
    Mutant(
        "rowwise-band-wrong-phase",
        "npcnn/fast/rowwise.py",
        "rows = xw[i % sh, i // sh : i // sh + out_h]",
        "rows = xw[0, i // sh : i // sh + out_h]",
        "fast",
        "row-wise conv: kernel row i reads phase 0 whatever the stride (right only for stride 1)",
    ),
    Mutant(
        "rowwise-first-row-accumulates",
        "npcnn/fast/rowwise.py",
        "y2, beta=float(i > 0),",
        "y2, beta=1.0,",
        "fast",
        "row-wise conv: the first kernel row adds to uninitialised memory (beta=1 from the start)",
    ),
    Mutant(
        "rowwise-dx-tap-shifted",
        "npcnn/fast/rowwise.py",
        "target[:, :, ow * sw : ow * sw + kw] += grad[:, :, ow]",
        "target[:, :, ow * sw : ow * sw + kw] += grad[:, :, ow, ::-1]",
        "fast",
        "row-wise conv dx: tap j of a window added to the mirrored input column",
    ),
    Mutant(
        "parallel-grads-of-last-part-only",
        "npcnn/fast/parallel.py",
        "layer.grads = [add_all([g[j] for g in grads]) for j in range(len(grads[0]))]",
        "layer.grads = grads[-1]",
        "fast",
        "data parallelism: a layer's gradient is its last part's, not the sum over the parts",
    ),
    Mutant(
        "parallel-backward-parts-swapped",
        "npcnn/fast/parallel.py",
        "dy[self.cuts[k] : self.cuts[k + 1]], need_dx)",
        "dy[self.cuts[-k - 2] : self.cuts[len(self.cuts) - k - 1]], need_dx)",
        "fast",
        "data parallelism: each part's backward gets another part's upstream gradient",
    ),
    Mutant(
        "processes-main-parts-grads-from-shared-memory",
        "npcnn/fast/parallel.py",
        "            if k in pool.mine:",
        "            if k in pool.mine[1:]:",
        "fast",
        "worker processes: the main process's first part's gradient read from the workers' slots",
    ),
    Mutant(
        "worker-part-output-of-next-part",
        "npcnn/worker.py",
        '            arrays["y"][cuts[k] : cuts[k + 1]] = y',
        '            arrays["y"][cuts[k] : cuts[k] + len(y)] = y[::-1]',
        "fast",
        "worker processes: a worker's part output written with its images in reverse order",
    ),
    Mutant(
        "fused-tiled-every-tied-tap-wins",
        "npcnn/fast/fused.py",
        "np.greater(w6[:, :, i, :, j], taken, out=w6[:, :, i, :, j])  # ... if no earlier did",
        "pass",
        "fast",
        "fused block, tiling windows: every tap equal to the maximum gets the gradient",
    ),
    Mutant(
        "dense-block-bias-of-first-block",
        "npcnn/fast/dense.py",
        "y[:, lo:hi] += b[lo:hi]",
        "y[:, lo:hi] += b[: hi - lo]",
        "fast",
        "big dense layer: every column block gets the first block's biases",
    ),
    Mutant(
        "dense-block-dx-of-first-rows",
        "npcnn/fast/dense.py",
        "np.matmul(w[lo:hi], dy.T, out=dx[lo:hi])",
        "np.matmul(w[: hi - lo], dy.T, out=dx[lo:hi])",
        "fast",
        "big dense layer: dx's column blocks all from the first rows of w",
    ),
    Mutant(
        "dense-block-dx-of-first-rows-float64",
        "npcnn/fast/dense.py",
        "np.matmul(dy, w[lo:hi].T, out=dx[:, lo:hi])",
        "np.matmul(dy, w[: hi - lo].T, out=dx[:, lo:hi])",
        "fast",
        "big dense layer, float64 (dx = dy @ w.T): every column block from the first rows of w",
    ),
    Mutant(
        "adam-one-minus-beta-f32",
        "npcnn/optimizers.py",
        "one_minus_b1, one_minus_b2 = f(1 - self.beta_1), f(1 - self.beta_2)",
        "one_minus_b1, one_minus_b2 = f(np.float32(1 - self.beta_1)), "
        "f(np.float32(1 - self.beta_2))",
        "ops+fast",
        "Adam: 1 - beta rounded to float32 (wrong in float64 runs)",
    ),
    Mutant(
        "adam-step-t-plus-1",
        "npcnn/optimizers.py",
        "        t = f(self.iterations)\n",
        "        t = f(self.iterations + 1)\n",
        "ops+fast",
        "Adam bias correction with t + 1 (the step counted twice)",
    ),
    Mutant(
        "adam-eps-in-sqrt-ops",
        "npcnn/ops/adam.py",
        "p -= m * alpha / (xp.sqrt(v) + eps)",
        "p -= m * alpha / xp.sqrt(v + eps)",
        "ops",
        "Adam: epsilon inside the square root",
    ),
    Mutant(
        "adam-eps-in-sqrt-fast",
        "npcnn/fast/adam.py",
        "        xp.sqrt(vs, out=tmp_s)  # w -= m * alpha / (sqrt(v) + epsilon)\n"
        "        tmp_s += eps\n",
        "        xp.add(vs, eps, out=tmp_s)\n        xp.sqrt(tmp_s, out=tmp_s)\n",
        "fast",
        "Adam: epsilon inside the square root",
    ),
    Mutant(
        "batchnorm-unbiased-variance",
        "npcnn/ops/batchnorm.py",
        "    var = ((x - mean) ** 2).mean(axis=axes)",
        "    var = ((x - mean) ** 2).sum(axis=axes) / (x.size // x.shape[-1] - 1)",
        "ops+fast",
        "batch norm: the variance divided by m - 1 (unbiased) instead of m, as Keras",
    ),
    Mutant(
        "batchnorm-dx-no-mean-term",
        "npcnn/ops/batchnorm.py",
        "(m * g - g.sum(axis=axes) - x_hat",
        "(m * g - x_hat",
        "ops+fast",
        "batch norm backward: the gradient through the batch mean dropped",
    ),
    Mutant(
        "batchnorm-dx-no-variance-term",
        "npcnn/ops/batchnorm.py",
        " - x_hat * (g * x_hat).sum(axis=axes))",
        ")",
        "ops+fast",
        "batch norm backward: the gradient through the batch variance dropped",
    ),
    Mutant(
        "avgpool-averages-padding",
        "npcnn/ops/avgpool2d.py",
        "return total / count,",
        "return total / len(taps),",
        "ops+fast",
        "average pooling 'same': padded cells counted in the mean (TF counts the image's only)",
    ),
    Mutant(
        "dropout-not-rescaled",
        "npcnn/ops/dropout.py",
        "scale = x.dtype.type(1 / (1 - rate))",
        "scale = x.dtype.type(1)",
        "ops+fast",
        "dropout: kept values not scaled by 1 / (1 - rate)",
    ),
    Mutant(
        "batchnorm-moving-average-swapped",
        "npcnn/ops/batchnorm.py",
        "return moving * f(momentum) + batch_value * f(1.0 - momentum)",
        "return moving * f(1.0 - momentum) + batch_value * f(momentum)",
        "ops+fast",
        "batch norm: momentum weighting the batch's statistics instead of the moving ones",
    ),
    Mutant(
        "rmsprop-eps-outside-sqrt",
        "npcnn/optimizers.py",
        "step = (lr * g) / np.sqrt(v + f(self.epsilon))",
        "step = (lr * g) / (np.sqrt(v) + f(self.epsilon))",
        "ops+fast",
        "RMSprop: epsilon added after the square root (Keras adds it inside)",
    ),
    Mutant(
        "sgd-nesterov-ignored",
        "npcnn/optimizers.py",
        "        if self.nesterov:\n",
        "        if False:\n",
        "ops+fast",
        "SGD: nesterov=True takes the plain momentum step",
    ),
)


class StaleMutant(Exception):
    """The mutant's ``old`` text does not occur exactly once: the source has moved on."""


def occurrences(mutant: Mutant, root: Path = ROOT) -> int:
    """How often the mutant's ``old`` text occurs in its file under ``root`` (0 if no file)."""
    path = root / mutant.path
    return path.read_text(encoding="utf-8").count(mutant.old) if path.is_file() else 0


def mutate(mutant: Mutant, root: Path) -> None:
    """Make the mutant's substitution in ``root / mutant.path``; StaleMutant if it cannot."""
    count = occurrences(mutant, root)
    if count != 1:
        raise StaleMutant(f"{mutant.path}: the old text occurs {count} times, not once")
    path = root / mutant.path
    path.write_text(path.read_text(encoding="utf-8").replace(mutant.old, mutant.new))


GUARD_SOURCE = '''"""Written by parity_tests/mutants.py into a temporary copy; loaded with -p."""
import json
import os
import sys

_ROOT = os.path.realpath(os.environ["NPCNN_MUTANT_ROOT"])
_first = []


def _record(nodeid):
    if not _first:
        _first.append(nodeid)


def pytest_collectreport(report):
    if report.failed:
        _record((report.nodeid or "<collection>") + " (collection error)")


def pytest_runtest_logreport(report):
    if report.failed:
        _record(report.nodeid + ("" if report.when == "call" else f" ({report.when})"))


def pytest_sessionfinish(session, exitstatus):
    modules, foreign = {}, []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in __PACKAGES__:
            where = getattr(module, "__file__", None)
            if where:
                modules[name] = where
                if not os.path.realpath(where).startswith(_ROOT + os.sep):
                    foreign.append(f"{name}: {where}")
    with open(os.environ["NPCNN_MUTANT_REPORT"], "w") as out:
        json.dump(
            {"first_failure": _first[0] if _first else None, "foreign": foreign,
             "npcnn": modules.get("npcnn"), "exitstatus": int(exitstatus)},
            out,
        )
'''.replace("__PACKAGES__", repr(PACKAGES))


READ_BY_TESTS = ("tests", "docs")  # what parity tests read besides the code (learners, helpers)


def make_copy(tests: str) -> Path:
    """A fresh temporary copy of the packages, the tests, pyproject.toml and the guard plugin."""
    dest = Path(tempfile.mkdtemp(prefix="npcnn-mutant-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in (*PACKAGES, tests.split("/")[0]):
        if (dest / name).exists():
            continue
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "conftest.py"):  # the root conftest holds the profiles
        shutil.copy2(ROOT / name, dest / name)
    for name in READ_BY_TESTS:
        if not (dest / name).exists():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    (dest / f"{GUARD}.py").write_text(GUARD_SOURCE)
    return dest


def environment(copy: Path) -> dict:
    """The subprocess environment: the copy first on PYTHONPATH, the derandomized profile."""
    env = dict(os.environ)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(copy) + (os.pathsep + rest if rest else "")
    env["NPCNN_HYPOTHESIS_PROFILE"] = "ci"
    env["NPCNN_MUTANT_ROOT"] = str(copy)
    env["NPCNN_MUTANT_REPORT"] = str(copy / "mutant-report.json")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # the MNIST tests look for data next to the test files; the copy is elsewhere
    data = ROOT.parent / "shared" / "data"
    if "NPCNN_DATA_DIR" not in env and (data / "mnist").is_dir():
        env["NPCNN_DATA_DIR"] = str(data)
    return env


def check_imports_copy(copy: Path) -> str:
    """``import npcnn, tfcnn`` in the subprocess's environment must load the copy; else exit 2."""
    code = "import npcnn, tfcnn; print(npcnn.__file__); print(tfcnn.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=copy,
        env=environment(copy),
        capture_output=True,
        text=True,
        check=False,
    )
    files = done.stdout.split()
    inside = [os.path.realpath(f).startswith(os.path.realpath(copy) + os.sep) for f in files]
    if done.returncode != 0 or len(files) != 2 or not all(inside):
        sys.exit(
            f"ABORT: the subprocess does not import the temporary copy {copy}:\n"
            f"{done.stdout}{done.stderr}"
        )
    return files[0]


@dataclass
class Outcome:
    name: str
    status: str  # 'caught', 'MISSED', 'STALE', 'ERROR', 'passed' (the unmutated run)
    first_failure: str
    seconds: float
    detail: str = ""


def run_suite(copy: Path, tests: str, timeout: float) -> tuple[int, dict, str, float]:
    """pytest -x on the copy; (exit code, the guard's report, output tail, seconds)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        GUARD,
        tests,
    ]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=copy,
            env=environment(copy),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        rc, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, output = -1, f"timed out after {timeout:.0f} s\n{exc.stdout or ''}"
    seconds = time.perf_counter() - start
    report_file = copy / "mutant-report.json"
    report = json.loads(report_file.read_text()) if report_file.is_file() else {}
    if not report.get("first_failure"):  # fall back on pytest's own summary line
        found = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
        report["first_failure"] = found.group(1) if found else None
    return rc, report, output[-3000:], seconds


def foreign_modules(report: dict) -> list:
    """Modules of npcnn/tfcnn the run imported from outside the copy (must be none)."""
    if not report.get("npcnn"):
        return ["npcnn was never imported"]
    return report["foreign"]


def run_mutant(mutant: Mutant | None, tests: str, timeout: float, keep: bool) -> Outcome:
    """Copy, mutate (unless ``mutant`` is None: the baseline), run; the outcome."""
    name = mutant.name if mutant else "(unmutated)"
    copy = make_copy(tests)
    try:
        if mutant is not None:
            try:
                mutate(mutant, copy)
            except StaleMutant as exc:
                return Outcome(name, "STALE", "", 0.0, str(exc))
        rc, report, tail, seconds = run_suite(copy, tests, timeout)
        if "foreign" not in report:  # pytest timed out or died before its session ended
            return Outcome(name, "ERROR", "", seconds, "no report from the guard plugin\n" + tail)
        foreign = foreign_modules(report)
        if foreign:
            return Outcome(name, "ERROR", "", seconds, "not the copy: " + "; ".join(foreign))
        first = report.get("first_failure") or ""
        if rc == 0:
            status = "passed" if mutant is None else "MISSED"
        elif rc == 1 and first:
            status = "caught" if mutant is not None else "FAILED"
        else:
            status = "ERROR"
        return Outcome(
            name, status, first, seconds, "" if status in ("caught", "MISSED", "passed") else tail
        )
    finally:
        if keep:
            print(f"kept {copy}", file=sys.stderr)
        else:
            shutil.rmtree(copy, ignore_errors=True)


def short_test(nodeid: str) -> str:
    """'parity_tests/test_ops_parity.py::test_x[ops-float32]' -> 'test_ops_parity::test_x[...]'."""
    path, _, rest = nodeid.partition("::")
    return f"{Path(path).stem}::{rest}" if rest else nodeid


def table(outcomes: list[Outcome], by_name: dict, markdown: bool) -> str:
    header = ("mutant", "tier", "file", "what", "result", "first failing test", "s")
    rows = []
    for o in outcomes:
        m = by_name[o.name]
        rows.append(
            (
                m.name,
                m.tier,
                m.path.removeprefix("npcnn/"),
                m.description,
                o.status,
                short_test(o.first_failure) or "-",
                f"{o.seconds:.0f}",
            )
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in rows:
            cells = [f"`{r[0]}`", *r[1:5], f"`{r[5]}`" if r[5] != "-" else "-", r[6]]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    widths[3] = min(widths[3], 60)
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join(
        fmt.format(*(str(c)[:60] if i == 3 else c for i, c in enumerate(r)))
        for r in (header, *rows)
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m parity_tests.mutants",
        description="Plant known bugs in a temporary copy of npcnn, one at a time; "
        "the parity suite must catch every one.",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument(
        "--tests",
        default="parity_tests",
        help="test path, relative to the repository root (default parity_tests)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds per pytest run (default 1200)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    by_name = {m.name: m for m in MUTANTS}
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:26} {m.tier:9} {m.path:26} {m.description}")
        return 0
    names = [n for n in args.only.split(",") if n] or list(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"unknown mutants: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    tests = args.tests.rstrip("/")
    if Path(tests).is_absolute() or not (ROOT / tests).exists():
        print(f"--tests must be a path inside {ROOT}, got {args.tests!r}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    probe = make_copy(tests)
    try:
        where = check_imports_copy(probe)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    print(f"the subprocess imports the copy ({where})", file=sys.stderr)

    stale = [n for n in names if occurrences(by_name[n]) != 1]
    for n in stale:
        print(
            f"STALE: {n}: its old text occurs {occurrences(by_name[n])} times in "
            f"{by_name[n].path}, not once",
            file=sys.stderr,
        )

    print(f"unmutated run of {tests} on a copy ...", file=sys.stderr)
    base = run_mutant(None, tests, args.timeout, args.keep)
    print(f"unmutated: {base.status} in {base.seconds:.0f} s", file=sys.stderr)
    if base.status != "passed":
        print(f"ABORT: the unmutated suite must pass on the copy.\n{base.detail}", file=sys.stderr)
        return 2

    def one(name):
        outcome = run_mutant(by_name[name], tests, args.timeout, args.keep)
        print(
            f"{outcome.name}: {outcome.status} {short_test(outcome.first_failure)} "
            f"({outcome.seconds:.0f} s)",
            file=sys.stderr,
        )
        if outcome.detail:
            print(outcome.detail, file=sys.stderr)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(one, names))
    total = time.perf_counter() - started

    print(table(outcomes, by_name, args.markdown))
    caught = sum(o.status == "caught" for o in outcomes)
    print(
        f"\n{caught} of {len(outcomes)} mutants caught; unmutated run {base.seconds:.0f} s; "
        f"total {total:.0f} s with --jobs {args.jobs} on {os.cpu_count()} CPUs"
    )
    if any(o.status == "ERROR" and o.detail.startswith("not the copy") for o in outcomes):
        return 2
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
