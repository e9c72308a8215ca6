"""Optimizers that update parameter arrays in place, Keras's exactly: ``SGD`` (with
momentum and Nesterov), ``RMSprop`` and ``Adam``.

Use them as in Keras (a learning rate may be a schedule, ``npcnn.schedules``)::

    model.backward(dloss)
    optimizer.apply_gradients(zip(model.grads, model.params))
"""

from __future__ import annotations

import numpy as np

from . import fast
from .backend import get_array_module, to_device, to_numpy
from .layers import kernels_module
from .validation import check_bool


def check_hyperparameter(value, name, low=0.0, high=None, open_low=True):
    """``value`` as a float in (low, high) (or [low, high) when ``open_low`` is False).

    Raises ``ValueError`` naming ``name`` for a non-number, NaN, inf or a value
    outside the range.
    """
    open_low = check_bool(open_low, "open_low")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    x = float(value)
    inside = (x > low if open_low else x >= low) and (high is None or x < high)
    if not np.isfinite(x) or not inside:
        bounds = f"{'(' if open_low else '['}{low}, {'inf' if high is None else high})"
        raise ValueError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return x


def check_learning_rate(value):
    """A learning rate: a number > 0 (:func:`check_hyperparameter`) or a schedule,
    called with the number of updates made so far (``npcnn.schedules``)."""
    return value if callable(value) else check_hyperparameter(value, "learning_rate")


def learning_rate_at(learning_rate, step) -> np.float32:
    """The rate of the update after ``step`` updates, in float32 as Keras keeps it."""
    return np.float32(learning_rate(step) if callable(learning_rate) else learning_rate)


def _is_array(a) -> bool:
    """A NumPy or CuPy array (what the optimizers can update and read)."""
    return isinstance(a, np.ndarray) or type(a).__module__.split(".")[0] == "cupy"


def check_slot(slot, p, parameter, what) -> None:
    """Raise ``ValueError`` unless an optimizer's ``slot`` (a moment, a momentum) has
    parameter ``p``'s shape, dtype and device; the message names both."""
    same_device = get_array_module(slot) is get_array_module(p)
    if tuple(slot.shape) != tuple(p.shape) or slot.dtype != p.dtype or not same_device:
        raise ValueError(
            f"{parameter} is {tuple(p.shape)} {p.dtype}, {what} {tuple(slot.shape)} {slot.dtype}"
            + ("" if same_device else " on another device")
        )


def check_pairs(grads_and_params, expected=None, who="optimizer", contiguous=False) -> list:
    """The (gradient, parameter) pairs as a list, every one checked before any is used.

    Each gradient must be an array with its parameter's shape, dtype and
    device (no broadcasting, no silent casts); each parameter a float32 or
    float64 array that can be written in place (``arr.flags.writeable``; with
    ``contiguous``, also C-contiguous, for kernels that update a flat view of
    it). An error raises ``ValueError`` naming the pair's index, and nothing
    has been changed yet: an optimizer calls this before touching any state.
    """
    contiguous = check_bool(contiguous, "contiguous")
    try:
        pairs = [tuple(pair) for pair in grads_and_params]
    except TypeError as exc:
        raise ValueError(f"{who}: grads_and_params must be (gradient, parameter) pairs") from exc
    if expected is not None and len(pairs) != expected:
        raise ValueError(f"{who} was built for {expected} parameters, got {len(pairs)}")
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"{who}: pair {i} is not a (gradient, parameter) pair")
        g, p = pair
        for what, a in (("parameter", p), ("gradient", g)):
            if not _is_array(a):
                raise ValueError(f"{who}: {what} {i} is not an array, got {type(a).__name__}")
        if p.dtype not in (np.float32, np.float64):
            raise ValueError(f"{who}: parameter {i} must be float32 or float64, not {p.dtype}")
        if not getattr(p.flags, "writeable", True):  # CuPy arrays are always writeable
            raise ValueError(f"{who}: parameter {i} is read-only (flags.writeable is False)")
        if contiguous and not p.flags.c_contiguous:
            raise ValueError(
                f"{who}: parameter {i} must be C-contiguous to be updated in place, "
                f"got a strided view of shape {tuple(p.shape)}"
            )
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(
                f"{who}: gradient {i} has shape {tuple(g.shape)}, its parameter {tuple(p.shape)}"
            )
        if g.dtype != p.dtype:
            raise ValueError(f"{who}: gradient {i} has dtype {g.dtype}, its parameter {p.dtype}")
        if get_array_module(g) is not get_array_module(p):
            raise ValueError(f"{who}: gradient {i} and its parameter live on different devices")
    return pairs


def _iterations(state, who) -> int:
    try:
        value = np.asarray(state["iterations"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{who} state has no 'iterations'") from exc
    if value.shape != () or value.dtype.kind not in "iu" or int(value) < 0:
        raise ValueError(f"{who} state: iterations must be an int >= 0, got {value!r}")
    return int(value)


class _WithSlots:
    """An optimizer that keeps, per parameter, one array per *slot* (SGD's momentum,
    RMSprop's velocity): created at the first step, saved as ``{slot}_{i}``.

    ``apply_gradients`` checks everything first -- every pair (:func:`check_pairs`)
    and every slot (shape, dtype, device) -- so a ``ValueError`` leaves the
    parameters, the slots and ``iterations`` as they were. A subclass names its
    ``slots`` and writes ``_update(g, p, slots)``, in the parameter's dtype.
    """

    who = ""  # the class name, for messages
    slots: tuple[str, ...] = ()

    def __init__(self, learning_rate):
        self.learning_rate = check_learning_rate(learning_rate)
        self.iterations = 0
        self.state: dict[str, list] = {name: [] for name in self.slots}

    def apply_gradients(self, grads_and_params):
        """One step for every parameter (all or nothing, see the class docstring)."""
        built = bool(self.slots) and bool(self.state[self.slots[0]])
        count = len(self.state[self.slots[0]]) if built else None
        pairs = check_pairs(grads_and_params, count, self.who)
        for name, arrays in self.state.items():
            for i, ((_, p), slot) in enumerate(zip(pairs, arrays)):
                check_slot(slot, p, f"{self.who}: parameter {i}", f"its slot {name}_{i}")
        if not built:  # every check passed: from here on nothing is refused
            for name in self.slots:
                self.state[name] = [get_array_module(p).zeros_like(p) for _, p in pairs]
        self.iterations += 1
        for i, (g, p) in enumerate(pairs):
            self._update(g, p, [self.state[name][i] for name in self.slots])

    def _lr(self, p):
        """The learning rate as Keras uses it: a float32 variable cast to p's dtype."""
        return p.dtype.type(learning_rate_at(self.learning_rate, self.iterations - 1))

    def get_state(self) -> dict:
        """Host arrays for a checkpoint: iterations and ``{slot}_{i}``."""
        state = {"iterations": np.array(self.iterations)}
        for name, arrays in self.state.items():
            for i, a in enumerate(arrays):
                state[f"{name}_{i}"] = to_numpy(a)
        return state

    def set_state(self, state: dict, params=None) -> None:
        """Restore from :meth:`get_state`; ``params`` gives the shapes and device.

        The state must hold ``iterations`` and, unless no slot was made yet,
        exactly one ``{slot}_{i}`` per slot and parameter, with its shape;
        anything else raises ``ValueError`` and leaves the optimizer as it was.
        """
        iterations = _iterations(state, self.who)
        found = sorted(str(k) for k in state if k != "iterations")
        params = list(params or [])
        if not found:
            self.iterations, self.state = iterations, {name: [] for name in self.slots}
            return
        wanted = sorted(f"{name}_{i}" for i in range(len(params)) for name in self.slots)
        if found != wanted:
            raise ValueError(
                f"{self.who} state must hold {', '.join(self.slots) or 'no slots'} for "
                f"{len(params)} parameters, got {', '.join(found)}"
            )
        restored = {name: [] for name in self.slots}
        for name in self.slots:
            for i, p in enumerate(params):
                a = np.asarray(state[f"{name}_{i}"])
                if a.shape != tuple(p.shape) or a.dtype.kind != "f":
                    raise ValueError(
                        f"{self.who} state: {name}_{i} is {a.shape} {a.dtype}, parameter {i} "
                        f"needs {tuple(p.shape)} float"
                    )
                own = np.array(a, dtype=p.dtype, order="C")  # its own copy
                restored[name].append(to_device(own, get_array_module(p)))
        self.iterations, self.state = iterations, restored


class SGD(_WithSlots):
    """Gradient descent with Keras's momentum and Nesterov (``keras.optimizers.SGD``).

    For each parameter w with gradient g (all in w's dtype)::

        momentum == 0:  w -= lr * g
        momentum  > 0:  m = m * momentum - lr * g         (m starts at 0)
                        w += m                            (nesterov=False)
                        w += m * momentum - lr * g        (nesterov=True: a look ahead)

    The velocity m remembers past steps: along a valley's floor the gradients
    agree and m grows to lr / (1 - momentum) times g; across it they cancel.
    """

    who = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        self.momentum = check_hyperparameter(momentum, "momentum", 0.0, 1.0, open_low=False)
        self.nesterov = check_bool(nesterov, "nesterov")
        self.slots = ("momentum",) if self.momentum else ()
        super().__init__(learning_rate)

    def _update(self, g, p, slots):
        lr = self._lr(p)
        if not slots:
            p -= lr * g
            return
        (m,) = slots
        momentum = p.dtype.type(np.float32(self.momentum))  # cast from a float32 tensor, as Keras
        m[...] = m * momentum - g * lr
        if self.nesterov:
            p += m * momentum - g * lr
        else:
            p += m


class RMSprop(_WithSlots):
    """RMSprop with Keras's exact update (``keras.optimizers.RMSprop``, not centered).

    For each parameter w with gradient g (all in w's dtype)::

        v = rho * v + (1 - rho) * g*g               (running mean of g^2; v starts at 0)
        step = lr * g / sqrt(v + epsilon)           (epsilon inside the root, as Keras)
        momentum == 0:  w -= step
        momentum  > 0:  m = momentum * m + step;  w -= m

    Each weight's step is scaled by its own recent gradient size: a weight with
    large gradients takes small steps, and the reverse.
    """

    who = "RMSprop"

    def __init__(self, learning_rate=1e-3, rho=0.9, momentum=0.0, epsilon=1e-7):
        self.rho = check_hyperparameter(rho, "rho", 0.0, 1.0, open_low=False)
        self.momentum = check_hyperparameter(momentum, "momentum", 0.0, 1.0, open_low=False)
        self.epsilon = check_hyperparameter(epsilon, "epsilon", 0.0, open_low=False)
        self.slots = ("velocity", "momentum") if self.momentum else ("velocity",)
        super().__init__(learning_rate)

    def _update(self, g, p, slots):
        f = p.dtype.type
        lr, rho, one_minus_rho = self._lr(p), f(self.rho), f(1 - self.rho)  # 1 - rho in Python
        v = slots[0]
        v[...] = rho * v + one_minus_rho * (g * g)
        step = (lr * g) / np.sqrt(v + f(self.epsilon))
        if len(slots) == 1:
            p -= step
            return
        m = slots[1]
        m[...] = f(self.momentum) * m + step
        p -= m


class Adam:
    """Adam with Keras's exact update (``keras.optimizers.Adam``).

    At step t (1, 2, ...), for each parameter w with gradient g::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1)          # running mean of g
        v += (g*g - v) * (1 - beta_2)        # running mean of g^2
        w -= m * alpha / (sqrt(v) + epsilon)

    Note where epsilon sits: Keras adds it to sqrt(v) *without* bias-correcting
    v first (the paper adds it to sqrt(v_hat)). With Keras's eps = 1e-7 the two
    differ visibly early in training. Everything is computed in the
    parameters' dtype, as Keras does. The update itself is ``adam_update`` of
    the ``kernels`` module: ``npcnn/ops/adam.py`` is those three lines;
    ``npcnn.fast`` (the default) computes the same numbers in place.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, kernels="fast"):
        self.kernels = kernels_module(kernels)
        self.learning_rate = check_learning_rate(learning_rate)
        self.beta_1 = check_hyperparameter(beta_1, "beta_1", 0.0, 1.0, open_low=False)
        self.beta_2 = check_hyperparameter(beta_2, "beta_2", 0.0, 1.0, open_low=False)
        self.epsilon = check_hyperparameter(epsilon, "epsilon", 0.0, open_low=False)
        self.iterations = 0
        self.m: list = []  # first moments, one per parameter
        self.v: list = []  # second moments

    def apply_gradients(self, grads_and_params):
        """One step for every parameter. Everything is checked first -- every
        pair (:func:`check_pairs`: shape, dtype, device, a writeable parameter,
        C-contiguous for the fast tier's in-place update, as many pairs as
        moments) and every moment (shape, dtype, device) -- so a ``ValueError``
        leaves parameters, moments and ``iterations`` exactly as they were."""
        in_place = self.kernels is fast  # the fast tier updates a flat view of each parameter
        pairs = check_pairs(grads_and_params, len(self.m) or None, "Adam", contiguous=in_place)
        for i, ((_, p), m, v) in enumerate(zip(pairs, self.m, self.v)):
            for kind, slot in (("m", m), ("v", v)):
                check_slot(slot, p, f"Adam: parameter {i}", f"its moment {kind}_{i}")
        # every check passed: from here on nothing is refused
        if not self.m:
            self.m = [get_array_module(p).zeros_like(p) for _, p in pairs]
            self.v = [get_array_module(p).zeros_like(p) for _, p in pairs]
        self.iterations += 1
        for (g, p), m, v in zip(pairs, self.m, self.v):
            self._update(p, g, m, v)

    def _update(self, p, g, m, v):
        f = p.dtype.type  # compute the scalars in the parameter's dtype, as Keras does
        t = f(self.iterations)
        # Rounding exactly as Keras (TF backend) does, bit for bit: lr lives in a
        # float32 variable and the betas inside alpha pass through float32 before
        # the cast to p's dtype, while 1 - beta is computed in Python (float64)
        # and rounded once; f(1) - f(b) would differ by ~1e-5 relative in float32.
        lr = f(learning_rate_at(self.learning_rate, self.iterations - 1))  # updates before this
        b1, b2 = (f(np.float32(h)) for h in (self.beta_1, self.beta_2))
        one_minus_b1, one_minus_b2 = f(1 - self.beta_1), f(1 - self.beta_2)
        eps = f(self.epsilon)
        alpha = lr * np.sqrt(f(1) - b2**t) / (f(1) - b1**t)
        self.kernels.adam_update(p, g, m, v, alpha, one_minus_b1, one_minus_b2, eps)

    def get_state(self) -> dict:
        """Host arrays for a checkpoint: iterations, m_0.., v_0.."""
        state = {"iterations": np.array(self.iterations)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m_{i}"], state[f"v_{i}"] = to_numpy(m), to_numpy(v)
        return state

    def set_state(self, state: dict, params) -> None:
        """Restore from :meth:`get_state`; ``params`` gives the shapes and device.

        The state must hold ``iterations`` and, unless it is 0 with no moments,
        exactly one ``m_i`` and ``v_i`` per parameter with its shape; anything
        else raises ``ValueError`` and leaves the optimizer as it was.
        """
        iterations = _iterations(state, "Adam")
        params = list(params)
        moments = sorted(str(k) for k in state if k != "iterations")
        if iterations == 0 and not moments:
            self.iterations, self.m, self.v = 0, [], []
            return
        wanted = sorted(f"{k}_{i}" for i in range(len(params)) for k in "mv")
        if moments != wanted:
            raise ValueError(
                f"Adam state must hold m_i and v_i for {len(params)} parameters, "
                f"got {', '.join(moments) or 'none'}"
            )
        m, v = [], []
        for i, p in enumerate(params):
            xp = get_array_module(p)
            for key, out in ((f"m_{i}", m), (f"v_{i}", v)):
                a = np.asarray(state[key])
                if a.shape != tuple(p.shape) or a.dtype.kind != "f":
                    raise ValueError(
                        f"Adam state: {key} is {a.shape} {a.dtype}, parameter {i} "
                        f"needs {tuple(p.shape)} float"
                    )
                out.append(to_device(np.array(a, dtype=p.dtype, order="C"), xp))  # own copy
        self.iterations, self.m, self.v = iterations, m, v
