"""Building blocks shared by rules that send errors down a layered network through some feedback pathway.

With ``e_{L-1} = dL/d logits`` and per-layer errors ``δ_l``, the layer updates are ``ΔW_l = h_lᵀ δ_l`` and
``Δb_l = Σ_batch δ_l``. Backprop uses ``δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ f'(a_l)``; the feedback-alignment family
replaces ``W_{l+1}ᵀ`` with another matrix ``B_l`` of the same shape (``[out_{l+1}, in_{l+1}]``).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from rulelab.core import Array, Params
from rulelab.nets.mlp import Activity, Network


def output_error(logits: Array, labels: Array) -> Array:
    """``dL/d logits`` of the mean softmax cross-entropy: ``(softmax(logits) - onehot(labels)) / batch``."""
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return (jax.nn.softmax(logits) - onehot) / logits.shape[0]


def chained_deltas(net: Network, activity: Activity, top_error: Array, feedback: Sequence[Array]) -> tuple[Array, ...]:
    """Per-layer errors sent down layer by layer: ``δ_l = (δ_{l+1} B_l) ⊙ f'(a_l)``, ``δ_{L-1} = top_error``.

    ``feedback[l]`` is shaped like ``W_{l+1}ᵀ``; ``feedback[l] = W_{l+1}ᵀ`` gives backprop exactly.
    """
    deltas = [top_error]
    for layer in reversed(range(net.num_layers - 1)):
        deltas.append((deltas[-1] @ feedback[layer]) * net.activation_derivative(activity.preactivations[layer]))
    return tuple(reversed(deltas))


def direct_deltas(net: Network, activity: Activity, top_error: Array, feedback: Sequence[Array]) -> tuple[Array, ...]:
    """Errors sent straight from the output: ``δ_l = (e D_l) ⊙ f'(a_l)``, ``D_l`` shaped ``[outputs, out_l]``."""
    hidden = tuple(
        (top_error @ feedback[layer]) * net.activation_derivative(activity.preactivations[layer])
        for layer in range(net.num_layers - 1)
    )
    return hidden + (top_error,)


def layer_updates(activity: Activity, deltas: Sequence[Array]) -> Params:
    """Gradient-signed updates ``{"kernel": h_lᵀ δ_l, "bias": Σ δ_l}`` for every layer."""
    return tuple(
        {"kernel": h.T @ delta, "bias": jnp.sum(delta, axis=0)} for h, delta in zip(activity.inputs, deltas)
    )


def transposed_kernels(params: Params) -> tuple[Array, ...]:
    """``(W_1ᵀ, ..., W_{L-1}ᵀ)``: the feedback matrices that make the chained rule equal backprop."""
    return tuple(layer["kernel"].T for layer in params[1:])
