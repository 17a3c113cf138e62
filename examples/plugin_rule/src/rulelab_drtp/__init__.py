"""Direct random target projection (DRTP) as a rulelab plugin rule.

Frenkel, Lefebvre & Bol (2021), "Learning without feedback: fixed random learning signals allow for feedforward
training of deep neural networks", Frontiers in Neuroscience 15:629892.

For classification the one-hot target y* already carries the sign of the output error e = softmax(z) − y*
(negative at the true class, positive elsewhere), so DRTP drives every hidden layer with a fixed random
projection of the *target* instead of the error: no feedback pathway, and a hidden layer can update as soon as
its own forward pass is done (no update locking). The output layer keeps the delta rule.

    δ_l = (y* B_l) ⊙ f'(a_l) / batch      hidden layer l, B_l fixed random [classes, out_l]
    δ_{L-1} = (softmax(z) − y*) / batch   output layer (exactly backprop's)
    ΔW_l = h_lᵀ δ_l,   Δb_l = Σ_batch δ_l  (gradient sign, so any optax optimizer applies it)

B_l is zero-mean, so the sign convention of the projection does not matter; ``feedback_scale`` multiplies it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab import Batch, LearningRule, Network, softmax_cross_entropy
from rulelab.rules.credit_assignment import direct_deltas, layer_updates, output_error

__all__ = ["TargetProjectionState", "direct_random_target_projection"]


class TargetProjectionState(NamedTuple):
    projections: tuple[jax.Array, ...]  # projections[l]: [classes, out_l], one per hidden layer


def direct_random_target_projection(net: Network, *, feedback_scale: float = 1.0) -> LearningRule:
    """DRTP: hidden layers learn from ``δ_l = (y* · s·B_l) ⊙ f'(a_l) / batch``; the output layer from its error."""
    classes = net.sizes[-1]
    shapes = [(classes, net.sizes[l + 1]) for l in range(net.num_layers - 1)]

    def init(key, params):
        del params
        keys = jax.random.split(key, max(len(shapes), 1))
        # std 1/sqrt(classes): a one-hot target then projects to unit-variance drive, like the forward init
        return TargetProjectionState(tuple(jax.random.normal(k, s) / jnp.sqrt(classes) for k, s in zip(keys, shapes)))

    def update(params, state: TargetProjectionState, batch: Batch, *, key):
        del key
        logits, activity = net.apply(params, batch.x)
        targets = jax.nn.one_hot(batch.y, classes, dtype=logits.dtype) / logits.shape[0]
        # direct_deltas sends its first argument through each D_l to the hidden layers; the output layer keeps
        # the true error, so replace the top delta afterwards.
        hidden = direct_deltas(net, activity, targets, [feedback_scale * b for b in state.projections])[:-1]
        deltas = (*hidden, output_error(logits, batch.y))
        loss = softmax_cross_entropy(logits, batch.y)
        return layer_updates(activity, deltas), state, {"loss": loss}

    return LearningRule(init, update)
