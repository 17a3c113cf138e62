"""Layered multilayer perceptron with pure ``init`` / ``apply`` and the activity local rules need.

Layers are defined with flax NNX (``nnx.Linear``, LeCun-normal kernels, zero biases) and split once into plain
arrays, so ``params`` is a tuple with one ``{"kernel": (in, out), "bias": (out,)}`` dict per layer and every
function here is pure and jittable. Hidden layers use ``activation``; the last layer is linear (logits).

    a_l = h_l W_l + b_l,   h_{l+1} = f(a_l)   (l < L-1),   logits = a_{L-1},   h_0 = x
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from rulelab.core import Array, Params, PRNGKey


class Activity(NamedTuple):
    """What one forward pass leaves behind for local learning rules."""

    inputs: tuple[Array, ...]  # h_l, [batch, in_l] for every layer l
    preactivations: tuple[Array, ...]  # a_l, [batch, out_l] for every layer l


def _relu_derivative(a: Array) -> Array:
    return (a > 0).astype(a.dtype)


def _tanh_derivative(a: Array) -> Array:
    return 1.0 - jnp.tanh(a) ** 2


def _sigmoid_derivative(a: Array) -> Array:
    s = jax.nn.sigmoid(a)
    return s * (1.0 - s)


# name -> (f, f')
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "tanh": (jnp.tanh, _tanh_derivative),
    "relu": (jax.nn.relu, _relu_derivative),
    "sigmoid": (jax.nn.sigmoid, _sigmoid_derivative),
    "linear": (lambda a: a, jnp.ones_like),
}


class Network(NamedTuple):
    """A static layered network description with pure functions."""

    sizes: tuple[int, ...]  # (inputs, hidden..., outputs)
    activation_name: str
    init: Callable[[PRNGKey], Params]
    apply: Callable[[Params, Array], tuple[Array, Activity]]
    activation: Callable[[Array], Array]  # f
    activation_derivative: Callable[[Array], Array]  # f'

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1


def mlp(sizes: tuple[int, ...] | list[int], activation: str = "tanh") -> Network:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` on hidden layers."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"mlp sizes must be at least two positive integers, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    f, f_prime = ACTIVATIONS[activation]
    num_layers = len(sizes) - 1

    def init(key: PRNGKey) -> Params:
        layers = []
        for layer_key, (fan_in, fan_out) in zip(jax.random.split(key, num_layers), zip(sizes[:-1], sizes[1:])):
            linear = nnx.Linear(fan_in, fan_out, rngs=nnx.Rngs(params=layer_key))
            layers.append({"kernel": linear.kernel[...], "bias": linear.bias[...]})
        return tuple(layers)

    def apply(params: Params, x: Array) -> tuple[Array, Activity]:
        inputs, preactivations = [], []
        h = x
        for index, layer in enumerate(params):
            inputs.append(h)
            a = h @ layer["kernel"] + layer["bias"]
            preactivations.append(a)
            h = f(a) if index < num_layers - 1 else a
        return h, Activity(tuple(inputs), tuple(preactivations))

    return Network(sizes, activation, init, apply, f, f_prime)
