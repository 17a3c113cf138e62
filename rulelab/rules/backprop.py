"""Backpropagation: the exact gradient, the baseline every other rule is measured against."""

from __future__ import annotations

import jax

from rulelab.core import Batch, EmptyState, LearningRule, softmax_cross_entropy
from rulelab.nets.mlp import Network
from rulelab.registry import register_rule


@register_rule("backprop")
def backprop(net: Network) -> LearningRule:
    """Backpropagation of errors (Rumelhart, Hinton & Williams 1986).

    ΔW = ∂L/∂W with L the mean softmax cross-entropy; the update is ``jax.grad`` of the loss itself.
    """

    def init(key, params):
        del key, params
        return EmptyState()

    def update(params, state, batch: Batch, *, key):
        del key

        def loss_fn(p):
            logits, _ = net.apply(p, batch.x)
            return softmax_cross_entropy(logits, batch.y)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        return grads, state, {"loss": loss}

    return LearningRule(init, update)
