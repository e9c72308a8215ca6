"""The frameworks people pick on a CPU, running npcnn's network with npcnn's weights.

PyTorch (eager, and ``torch.compile``), JAX (``jit``) and MyGrad (a NumPy
autograd library) each get the seed network built from an npcnn model's
``get_weights()``, so that every system does the same work:

- layouts converted: conv kernels HWIO -> OIHW and activations NHWC -> NCHW
  for PyTorch and MyGrad (their native layout), dense kernels (in, out) ->
  (out, in) for PyTorch's ``F.linear``; dense1's rows permuted so that the
  NCHW flatten meets the same weights as npcnn's NHWC flatten; JAX runs NHWC
  and HWIO as npcnn does;
- 'same' padding with TensorFlow's split (the odd extra row and column at the
  bottom and right: an explicit, possibly asymmetric ``F.pad`` for PyTorch,
  zeros concatenated for MyGrad, ``"SAME"`` for JAX); 2x2 max-pool, stride 2;
- the tutorial's summed cross-entropy, from the logits (each framework's
  idiom; npcnn's step takes it from the probabilities, Keras's eager path);
- Adam(1e-3, 0.9, 0.999, eps 1e-7). JAX and MyGrad run Keras's form, eps
  added to the uncorrected sqrt(v), as npcnn does; ``torch.optim.Adam`` adds
  it to the bias-corrected sqrt(v_hat) (the same work, a different eps place).

``tests/benchmarks/test_peers_same_work.py`` proves it: logits, loss and the
eight gradients of each peer equal npcnn's within the parity tests' float32
rounding bound. A peer that is not installed raises :class:`Missing`, whose
message says how to install it.
"""

from __future__ import annotations

import importlib
import math
import time

import numpy as np

from .workloads import CONV, DENSE, POOL

LR, BETA_1, BETA_2, EPS = 1e-3, 0.9, 0.999, 1e-7


class Missing(RuntimeError):
    """A peer that cannot run here; the message says why and how to install it."""


def require(system: str):
    """Import the peer's framework, or raise :class:`Missing` saying how to install it."""
    from .systems import SYSTEMS, missing

    why = missing(system)
    if why:
        raise Missing(why)
    return importlib.import_module(SYSTEMS[system][0])


def tf_same_pads(size: int, kernel: int, stride: int = 1) -> tuple[int, int]:
    """(before, after) zeros of TensorFlow's 'same' along one axis: the odd one after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def nhwc_to_nchw(x):
    return np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))


def hwio_to_oihw(w):
    return np.ascontiguousarray(np.asarray(w).transpose(3, 2, 0, 1))


def oihw_to_hwio(w):
    return np.ascontiguousarray(np.asarray(w).transpose(2, 3, 1, 0))


def nhwc_rows_to_nchw(w, shape=(7, 7, 64)):
    """dense1's kernel rows reordered from an NHWC flatten (h, w, c) to NCHW's (c, h, w)."""
    h, wd, c = shape
    return np.ascontiguousarray(
        w.reshape(h, wd, c, -1).transpose(2, 0, 1, 3).reshape(h * wd * c, -1)
    )


def nchw_rows_to_nhwc(w, shape=(7, 7, 64)):
    h, wd, c = shape
    return np.ascontiguousarray(
        w.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(h * wd * c, -1)
    )


def seed_weights(dtype="float32", seed=0):
    """An npcnn seed network's weights (Keras order, HWIO): what every peer starts from."""
    import npcnn

    return npcnn.seed_cnn(seed=seed, dtype=dtype).get_weights()


# ------------------------------------------------------------------ PyTorch
class TorchNet:
    """The seed network in PyTorch (NCHW), from npcnn's weights; ``compiled`` runs
    the forward pass through ``torch.compile``."""

    def __init__(self, weights, threads=None, compiled=False, device="cpu"):
        torch = require("torch-compile" if compiled else "torch-eager")
        self.torch, self.F = torch, torch.nn.functional
        self.device = torch.device("cuda" if device == "gpu" else "cpu")
        if device == "gpu":
            from .gpu import torch_tf32_off

            torch_tf32_off(torch)
        w1, b1, w2, b2, w3, b3, w4, b4 = weights
        host = [
            hwio_to_oihw(w1),
            b1,
            hwio_to_oihw(w2),
            b2,
            np.ascontiguousarray(nhwc_rows_to_nchw(w3).T),
            b3,
            np.ascontiguousarray(w4.T),
            b4,
        ]
        self.params = [torch.tensor(a, device=self.device, requires_grad=True) for a in host]
        self.optimizer = torch.optim.Adam(self.params, lr=LR, betas=(BETA_1, BETA_2), eps=EPS)
        self.logits = self._logits
        if compiled:
            self.logits = torch.compile(self._logits, dynamic=False)

    def conv_relu_pool(self, x, w, b):
        F = self.F
        k = w.shape[-1]
        top, bottom = tf_same_pads(x.shape[2], k)
        left, right = tf_same_pads(x.shape[3], k)
        x = F.pad(x, (left, right, top, bottom))  # TF's 'same': the odd one bottom/right
        return F.max_pool2d(F.relu(F.conv2d(x, w, b)), 2, 2)

    def _logits(self, x):
        F = self.F
        w1, b1, w2, b2, w3, b3, w4, b4 = self.params
        x = self.conv_relu_pool(x, w1, b1)
        x = self.conv_relu_pool(x, w2, b2)
        x = F.relu(F.linear(x.flatten(1), w3, b3))
        return F.linear(x, w4, b4)

    def inputs(self, images, labels=None):
        x = self.torch.from_numpy(nhwc_to_nchw(images)).to(self.device)
        if labels is None:
            return x
        return x, self.torch.from_numpy(np.asarray(labels, np.int64)).to(self.device)

    def loss(self, x, y):
        return self.F.cross_entropy(self.logits(x), y, reduction="sum")

    def train_step(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x, y)
        loss.backward()
        self.optimizer.step()
        return loss

    def predict(self, x):
        with self.torch.inference_mode():
            return self.torch.softmax(self.logits(x), dim=1)

    def logits_loss_grads(self, images, labels):
        """(logits, loss, grads): NumPy arrays in npcnn's layouts and order."""
        x, y = self.inputs(images, labels)
        for p in self.params:
            p.grad = None
        logits = self.logits(x)
        loss = self.F.cross_entropy(logits, y, reduction="sum")
        loss.backward()
        g = [p.grad.cpu().numpy() for p in self.params]
        grads = [
            oihw_to_hwio(g[0]),
            g[1],
            oihw_to_hwio(g[2]),
            g[3],
            nchw_rows_to_nhwc(g[4].T),
            g[5],
            np.ascontiguousarray(g[6].T),
            g[7],
        ]
        return logits.detach().cpu().numpy(), loss.item(), grads

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def op(self, name, kind, a):
        """A zero-argument function running one op (NCHW), forward or with its gradients."""
        torch, F = self.torch, self.F
        dev = self.device

        def t(array, grad=True):
            return torch.tensor(array, device=dev, requires_grad=grad)

        if name in CONV:
            x, w, b = t(nhwc_to_nchw(a["x"])), t(hwio_to_oihw(a["w"])), t(a["b"])
            dy = t(nhwc_to_nchw(a["dy"]), False)
            k, size = a["w"].shape[0], a["x"].shape[1]
            pads = (*tf_same_pads(size, k), *tf_same_pads(size, k))
            sources, f = [x, w, b], lambda: F.conv2d(F.pad(x, pads), w, b)
        elif name in POOL:
            x, dy = t(nhwc_to_nchw(a["x"])), t(nhwc_to_nchw(a["dy"]), False)
            sources, f = [x], lambda: F.max_pool2d(x, 2, 2)
        elif name in DENSE:
            x, w, b = t(a["x"]), t(np.ascontiguousarray(a["w"].T)), t(a["b"])
            sources, f, dy = [x, w, b], lambda: F.linear(x, w, b), t(a["dy"], False)
        elif name == "relu":
            x, dy = t(nhwc_to_nchw(a["x"])), t(nhwc_to_nchw(a["dy"]), False)
            sources, f = [x], lambda: F.relu(x)
        else:  # softmax+loss
            x, y = t(a["x"]), torch.from_numpy(np.asarray(a["labels"], np.int64)).to(dev)
            sources, dy = [x], None
            f = lambda: F.cross_entropy(x, y, reduction="sum")  # noqa: E731
        if kind == "forward":

            def forward():
                with torch.no_grad():
                    return f()

            return forward
        return lambda: torch.autograd.grad(f(), sources, grad_outputs=dy)


# ------------------------------------------------------------------ JAX
class JaxNet:
    """The seed network in JAX (NHWC, HWIO: npcnn's layouts), ``jit``-compiled, with
    Adam written out in ``jnp`` inside the jitted step."""

    def __init__(self, weights, threads=None):
        jax = require("jax-jit")
        jax.config.update("jax_default_matmul_precision", "highest")
        self.jax, jnp, lax = jax, jax.numpy, jax.lax
        names = ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"]
        params = {n: jnp.asarray(w) for n, w in zip(names, weights)}
        self.names = names

        def conv_relu_pool(x, w, b):
            y = lax.conv_general_dilated(  # "SAME" is TF's split
                x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
            y = jax.nn.relu(y + b)
            return lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def logits(p, x):
            x = conv_relu_pool(x, p["w1"], p["b1"])
            x = conv_relu_pool(x, p["w2"], p["b2"])
            x = jax.nn.relu(x.reshape(x.shape[0], -1) @ p["w3"] + p["b3"])
            return x @ p["w4"] + p["b4"]

        def loss_fn(p, x, y):
            logp = jax.nn.log_softmax(logits(p, x))
            return -jnp.sum(jnp.take_along_axis(logp, y[:, None], axis=1))

        def step(p, m, v, t, x, y):
            loss, g = jax.value_and_grad(loss_fn)(p, x, y)
            t = t + 1
            alpha = LR * jnp.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
            tm = jax.tree_util.tree_map
            m = tm(lambda m, g: m + (g - m) * (1 - BETA_1), m, g)
            v = tm(lambda v, g: v + (g * g - v) * (1 - BETA_2), v, g)
            p = tm(lambda p, m, v: p - m * alpha / (jnp.sqrt(v) + EPS), p, m, v)
            return p, m, v, t, loss

        self.conv_relu_pool, self._logits, self.loss_fn = conv_relu_pool, logits, loss_fn
        self.step = jax.jit(step, donate_argnums=(0, 1, 2, 3))
        self.infer = jax.jit(lambda p, x: jax.nn.softmax(logits(p, x)))
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        self.state = [params, zeros, jax.tree_util.tree_map(jnp.zeros_like, params)]
        self.state.append(jnp.zeros((), jnp.float32))
        self.last = None

    def inputs(self, images, labels=None):
        x = self.jax.device_put(np.asarray(images))
        if labels is None:
            return x
        return x, self.jax.device_put(np.asarray(labels, np.int32))

    def train_step(self, x, y):
        *self.state, self.last = self.step(*self.state, x, y)
        return self.last

    def predict(self, x):
        self.last = self.infer(self.state[0], x)
        return self.last

    def sync(self):
        if self.last is not None:
            self.jax.block_until_ready(self.last)

    def logits_loss_grads(self, images, labels):
        x, y = self.inputs(images, labels)
        p, jit = self.state[0], self.jax.jit
        loss, g = jit(self.jax.value_and_grad(self.loss_fn))(p, x, y)
        logits = jit(self._logits)(p, x)
        return np.asarray(logits), float(loss), [np.asarray(g[n]) for n in self.names]

    def op(self, name, kind, a):
        jax, jnp, lax = self.jax, self.jax.numpy, self.jax.lax
        args = [jnp.asarray(a["x"])]
        if name in CONV:
            args += [jnp.asarray(a["w"]), jnp.asarray(a["b"])]

            def f(x, w, b):
                dn = ("NHWC", "HWIO", "NHWC")
                return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn) + b

        elif name in POOL:

            def f(x):
                return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        elif name in DENSE:
            args += [jnp.asarray(a["w"]), jnp.asarray(a["b"])]

            def f(x, w, b):
                return x @ w + b

        elif name == "relu":
            f = jax.nn.relu
        else:  # softmax+loss
            labels = jnp.asarray(np.asarray(a["labels"], np.int32))

            def f(x):
                logp = jax.nn.log_softmax(x)
                return -jnp.sum(jnp.take_along_axis(logp, labels[:, None], axis=1))

        if kind == "forward":
            run = jax.jit(f)
        else:
            dy = jnp.asarray(a["dy"]) if "dy" in a else jnp.ones((), args[0].dtype)
            run = jax.jit(lambda *xs: jax.vjp(f, *xs)[1](dy))
        return lambda: jax.block_until_ready(run(*args))


# ------------------------------------------------------------------ MyGrad
class MygradNet:
    """The seed network in MyGrad (NCHW: ``conv_nd`` takes OIHW kernels), with
    Keras's Adam written in NumPy on the parameter arrays."""

    def __init__(self, weights, threads=None):
        mg = require("mygrad")
        from mygrad import nnet

        self.mg, self.nnet = mg, nnet
        w1, b1, w2, b2, w3, b3, w4, b4 = weights
        self.params = [
            hwio_to_oihw(w1),
            b1.reshape(1, -1, 1, 1),
            hwio_to_oihw(w2),
            b2.reshape(1, -1, 1, 1),
            nhwc_rows_to_nchw(w3),
            b3,
            w4.copy(),
            b4.copy(),
        ]
        self.params = [np.ascontiguousarray(p) for p in self.params]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def pad_same(self, x, k):
        """TF's 'same' zeros around an NCHW tensor (symmetric through conv_nd's
        padding, the odd extra row/column at the bottom/right concatenated)."""
        mg = self.mg
        (top, bottom), (left, right) = tf_same_pads(x.shape[2], k), tf_same_pads(x.shape[3], k)
        if top == bottom and left == right:
            return x, (top, left)
        n, c, h, w = x.shape
        zeros = np.zeros((n, c, top, w), x.dtype), np.zeros((n, c, bottom, w), x.dtype)
        x = mg.concatenate([zeros[0], x, zeros[1]], axis=2)
        h += top + bottom
        zeros = np.zeros((n, c, h, left), x.dtype), np.zeros((n, c, h, right), x.dtype)
        return mg.concatenate([zeros[0], x, zeros[1]], axis=3), 0

    def pool(self, x):
        """2x2 max-pool, stride 2, 'valid': MyGrad wants the windows to tile the input,
        so an odd last row and column (which no window covers) are cut off first."""
        h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
        return self.nnet.max_pool(x[:, :, :h, :w], (2, 2), 2)

    def conv(self, x, w, b):
        x, padding = self.pad_same(x, w.shape[-1])
        return self.nnet.conv_nd(x, w, stride=1, padding=padding) + b

    def logits(self, x, params):
        mg, nnet = self.mg, self.nnet
        w1, b1, w2, b2, w3, b3, w4, b4 = params
        x = self.pool(nnet.relu(self.conv(x, w1, b1)))
        x = self.pool(nnet.relu(self.conv(x, w2, b2)))
        x = nnet.relu(mg.matmul(x.reshape(x.shape[0], -1), w3) + b3)
        return mg.matmul(x, w4) + b4

    def summed_crossentropy(self, logits, labels):
        return -self.mg.sum(self.nnet.logsoftmax(logits)[np.arange(len(labels)), labels])

    def inputs(self, images, labels=None):
        x = nhwc_to_nchw(images)
        return x if labels is None else (x, np.asarray(labels))

    def loss_and_grads(self, x, labels):
        tensors = [self.mg.tensor(p, copy=False) for p in self.params]
        logits = self.logits(x, tensors)
        loss = self.summed_crossentropy(logits, labels)
        loss.backward()
        return logits, loss, [t.grad for t in tensors]

    def train_step(self, x, labels):
        _, loss, grads = self.loss_and_grads(x, labels)
        self.t += 1
        alpha = LR * math.sqrt(1 - BETA_2**self.t) / (1 - BETA_1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):  # Keras's Adam
            m += (g - m) * (1 - BETA_1)
            v += (g * g - v) * (1 - BETA_2)
            p -= alpha * m / (np.sqrt(v) + EPS)
        return loss.item()

    def predict(self, x):
        with self.mg.no_autodiff:
            return self.nnet.softmax(self.logits(x, self.params))

    def logits_loss_grads(self, images, labels):
        logits, loss, g = self.loss_and_grads(*self.inputs(images, labels))
        grads = [
            oihw_to_hwio(g[0]),
            g[1].reshape(-1),
            oihw_to_hwio(g[2]),
            g[3].reshape(-1),
            nchw_rows_to_nhwc(g[4]),
            g[5],
            g[6],
            g[7],
        ]
        return logits.data.copy(), loss.item(), grads

    def sync(self):
        pass

    def op(self, name, kind, a):
        mg, nnet = self.mg, self.nnet
        if name in CONV:
            arrays = [nhwc_to_nchw(a["x"]), hwio_to_oihw(a["w"]), a["b"].reshape(1, -1, 1, 1)]
            dy = nhwc_to_nchw(a["dy"])

            def f(x, w, b):
                return self.conv(x, w, b)

        elif name in POOL:
            arrays, dy = [nhwc_to_nchw(a["x"])], nhwc_to_nchw(a["dy"])

            f = self.pool

        elif name in DENSE:
            arrays, dy = [a["x"], a["w"], a["b"]], a["dy"]

            def f(x, w, b):
                return mg.matmul(x, w) + b

        elif name == "relu":
            arrays, dy = [nhwc_to_nchw(a["x"])], nhwc_to_nchw(a["dy"])
            f = nnet.relu
        else:  # softmax+loss
            arrays, dy = [a["x"]], None

            def f(x):
                return self.summed_crossentropy(x, a["labels"])

        if kind == "forward":

            def forward():
                with mg.no_autodiff:
                    return f(*arrays)

            return forward

        def forward_backward():
            tensors = [mg.tensor(x, copy=False) for x in arrays]
            f(*tensors).backward(dy)
            return [t.grad for t in tensors]

        return forward_backward


BUILDERS = {
    "torch-eager": lambda w, threads, device: TorchNet(w, threads, False, device),
    "torch-compile": lambda w, threads, device: TorchNet(w, threads, True, device),
    "jax-jit": lambda w, threads, device: JaxNet(w, threads),
    "mygrad": lambda w, threads, device: MygradNet(w, threads),
}


def build(system, weights, threads=None, device="cpu"):
    """The peer ``system`` holding ``weights`` (npcnn's order and layouts); raises
    :class:`Missing` when it cannot run here."""
    if device == "gpu" and system == "mygrad":
        raise Missing("MyGrad runs on NumPy only")
    if device == "gpu" and system == "jax-jit":
        jax = require(system)
        if jax.default_backend() != "gpu":
            raise Missing(f"JAX's backend is {jax.default_backend()}, not gpu")
    start = time.perf_counter()
    net = BUILDERS[system](weights, threads, device)
    net.setup_s = time.perf_counter() - start
    return net
