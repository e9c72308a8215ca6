"""The ops a learner can write, with the signatures and the contract of ``npcnn.ops``.

Each op is a pair ``<name>_forward(...) -> (out, cache)`` and
``<name>_backward(upstream, cache) -> gradients``. :data:`OPS` lists them in the
order a course teaches them; ``npcnn check`` checks those a file defines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class OpSpec:
    """One forward/backward pair: its argument names and what the backward returns."""

    name: str
    forward_args: tuple  # the forward's parameters, in order (required ones first)
    required: int  # how many of them have no default
    defaults: tuple  # the defaults of the others, as text
    upstream: str  # the backward's first parameter
    grads: tuple  # what the backward returns, in order
    wrt: tuple  # the forward argument each gradient belongs to
    output: str = "y"  # the forward's output, as the docs name it
    forward_returns: tuple = ("out", "cache")  # what the forward returns, in order
    reference: tuple = ()  # npcnn.ops's (forward, backward) names, when not <name>_forward/...

    @property
    def forward(self) -> str:
        return f"{self.name}_forward"

    @property
    def backward(self) -> str:
        return f"{self.name}_backward"

    def forward_signature(self) -> str:
        names = list(self.forward_args[: self.required])
        names += [f"{a}={d}" for a, d in zip(self.forward_args[self.required :], self.defaults)]
        return f"{self.forward}({', '.join(names)})"

    def backward_signature(self) -> str:
        return f"{self.backward}({self.upstream}, cache)"

    def returns(self) -> str:
        """What the backward returns, as the docs write it: ``(dx, dw, db)`` or ``dx``."""
        return f"({', '.join(self.grads)})" if len(self.grads) > 1 else self.grads[0]


# a pooling op's arguments, their defaults, its upstream gradient and its gradient
POOLING = (
    ("x", "pool_size", "strides", "padding"),
    1,
    ("2", "None", "'valid'"),
    "dy",
    ("dx",),
    ("x",),
)

OPS = (
    OpSpec("relu", ("x",), 1, (), "dy", ("dx",), ("x",)),
    OpSpec("dense", ("x", "w", "b"), 3, (), "dy", ("dx", "dw", "db"), ("x", "w", "b")),
    OpSpec("flatten", ("x",), 1, (), "dy", ("dx",), ("x",)),
    OpSpec(
        "conv2d",
        ("x", "w", "b", "strides", "padding"),
        3,
        ("1", "'same'"),
        "dy",
        ("dx", "dw", "db"),
        ("x", "w", "b"),
    ),
    OpSpec("maxpool2d", *POOLING),
    OpSpec("softmax", ("z",), 1, (), "dp", ("dz",), ("z",), "p"),
    OpSpec(
        "sparse_categorical_crossentropy",
        ("y_pred", "labels", "from_logits", "reduction"),
        2,
        ("False", "'sum'"),
        "dloss",
        ("dy_pred",),
        ("y_pred",),
        "loss",
    ),
    OpSpec(
        "batchnorm",
        ("x", "gamma", "beta", "epsilon"),
        3,
        ("1e-3",),
        "dy",
        ("dx", "dgamma", "dbeta"),
        ("x", "gamma", "beta"),
        forward_returns=("y", "cache", "(mean, var)"),
    ),
    OpSpec(
        "batchnorm_inference",
        ("x", "gamma", "beta", "moving_mean", "moving_var", "epsilon"),
        5,
        ("1e-3",),
        "dy",
        ("dx", "dgamma", "dbeta"),
        ("x", "gamma", "beta"),
        reference=("batchnorm_inference", "batchnorm_backward"),
    ),
    OpSpec("dropout", ("x", "rate", "rng"), 3, (), "dy", ("dx",), ("x",)),
    OpSpec("avgpool2d", *POOLING),
    OpSpec("global_avgpool2d", ("x",), 1, (), "dy", ("dx",), ("x",)),
    OpSpec("leaky_relu", ("x", "negative_slope"), 1, ("0.3",), "dy", ("dx",), ("x",)),
    OpSpec("sigmoid", ("x",), 1, (), "dy", ("dx",), ("x",), "s"),
    OpSpec("tanh", ("x",), 1, (), "dy", ("dx",), ("x",), "t"),
)
BY_NAME = {op.name: op for op in OPS}
ALIASES = {
    "crossentropy": "sparse_categorical_crossentropy",
    "maxpool": "maxpool2d",
    "conv": "conv2d",
    "batchnormalization": "batchnorm",
    "avgpool": "avgpool2d",
    "averagepooling2d": "avgpool2d",
    "globalaveragepooling2d": "global_avgpool2d",
    "leakyrelu": "leaky_relu",
}


@dataclass(frozen=True)
class Mistake:
    """A known mistake: the wrong code of one half of an op, and what a teacher would say."""

    name: str
    op: str
    stage: str  # 'forward' or 'backward'
    says: str  # what a teacher would tell the learner
    fn: Callable
    mutates: tuple = ()  # the arguments whose change in place is this mistake


def op_named(name: str) -> OpSpec:
    """The op called ``name`` (or an alias: conv, maxpool, crossentropy); ValueError if none."""
    spec = BY_NAME.get(ALIASES.get(name, name))
    if spec is None:
        known = ", ".join(op.name for op in OPS)
        raise ValueError(f"unknown op {name!r}; the ops are: {known}")
    return spec
