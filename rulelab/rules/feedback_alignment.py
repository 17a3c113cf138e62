"""The feedback-alignment family: errors reach hidden layers through matrices other than ``Wᵀ``.

All four rules share the forward pass and ``ΔW_l = h_lᵀ δ_l``; they differ in how ``δ_l`` is formed
(see ``rulelab.rules.credit_assignment``). Feedback matrices are rule state, drawn at ``init`` with the same scale
as the forward initialisation (std ``1/sqrt(fan_in)``), and multiplied by the ``feedback_scale`` hyperparameter in
``update`` so the scale is a traced, sweepable, differentiable number.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Batch, LearningRule, softmax_cross_entropy
from rulelab.nets.mlp import Network
from rulelab.registry import register_rule
from rulelab.rules.credit_assignment import (
    chained_deltas,
    direct_deltas,
    layer_updates,
    output_error,
)


class FeedbackState(NamedTuple):
    feedback: tuple[Array, ...]  # feedback[l]: [out_{l+1}, in_{l+1}] (like W_{l+1}ᵀ), or [outputs, out_l] for DFA


def _random_feedback(key, shapes: list[tuple[int, int]]) -> tuple[Array, ...]:
    # std 1/sqrt(columns): the LeCun scale of the forward kernel this matrix stands in for.
    keys = jax.random.split(key, max(len(shapes), 1))
    return tuple(jax.random.normal(k, shape) / jnp.sqrt(shape[1]) for k, shape in zip(keys, shapes))


def _chained_feedback_shapes(net: Network) -> list[tuple[int, int]]:
    return [(net.sizes[l + 2], net.sizes[l + 1]) for l in range(net.num_layers - 1)]


def _forward(net: Network, params, batch: Batch):
    logits, activity = net.apply(params, batch.x)
    return softmax_cross_entropy(logits, batch.y), output_error(logits, batch.y), activity


@register_rule("feedback_alignment")
def feedback_alignment(net: Network, *, feedback_scale: float = 1.0) -> LearningRule:
    """Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016, Nat. Commun. 7:13276).

    δ_l = (δ_{l+1} · s·B_l) ⊙ f'(a_l) with fixed random B_l shaped like W_{l+1}ᵀ; ΔW_l = h_lᵀ δ_l.
    With B_l = W_{l+1}ᵀ and s = 1 it is backprop exactly.
    """

    def init(key, params):
        del params
        return FeedbackState(_random_feedback(key, _chained_feedback_shapes(net)))

    def update(params, state: FeedbackState, batch: Batch, *, key):
        del key
        loss, error, activity = _forward(net, params, batch)
        feedback = tuple(feedback_scale * b for b in state.feedback)
        updates = layer_updates(activity, chained_deltas(net, activity, error, feedback))
        return updates, state, {"loss": loss}

    return LearningRule(init, update)


@register_rule("direct_feedback_alignment")
def direct_feedback_alignment(net: Network, *, feedback_scale: float = 1.0) -> LearningRule:
    """Direct feedback alignment (Nøkland 2016, NeurIPS).

    δ_l = (e · s·D_l) ⊙ f'(a_l) for every hidden layer, e = ∂L/∂logits, fixed random D_l: [outputs, out_l].
    With one hidden layer and D_0 = W_1ᵀ it is backprop exactly.
    """
    shapes = [(net.sizes[-1], net.sizes[l + 1]) for l in range(net.num_layers - 1)]

    def init(key, params):
        del params
        return FeedbackState(_random_feedback(key, shapes))

    def update(params, state: FeedbackState, batch: Batch, *, key):
        del key
        loss, error, activity = _forward(net, params, batch)
        feedback = tuple(feedback_scale * d for d in state.feedback)
        updates = layer_updates(activity, direct_deltas(net, activity, error, feedback))
        return updates, state, {"loss": loss}

    return LearningRule(init, update)


class SignSymmetryState(NamedTuple):
    magnitudes: tuple[Array, ...]  # |B_l|: [out_{l+1}, in_{l+1}]; ones/sqrt(fan_in) for "uniform"


SIGN_SYMMETRY_VARIANTS = ("uniform", "random_magnitude")


@register_rule("sign_symmetry")
def sign_symmetry(net: Network, *, variant: str = "uniform", feedback_scale: float = 1.0) -> LearningRule:
    """Sign-concordant feedback (Liao, Leibo & Poggio 2016, AAAI; BioTorch's uSF and frSF).

    B_l = s · sign(W_{l+1}ᵀ) ⊙ M_l, δ_l = (δ_{l+1} B_l) ⊙ f'(a_l). ``variant="uniform"`` (uSF): M_l = 1/sqrt(fan_in);
    ``variant="random_magnitude"`` (frSF): M_l = |R_l|, R_l fixed random. With M_l = |W_{l+1}ᵀ| it is backprop.
    """
    if variant not in SIGN_SYMMETRY_VARIANTS:
        raise ValueError(f"unknown sign_symmetry variant {variant!r}; valid: {', '.join(SIGN_SYMMETRY_VARIANTS)}")
    shapes = _chained_feedback_shapes(net)

    def init(key, params):
        del params
        if variant == "uniform":
            return SignSymmetryState(tuple(jnp.ones(shape) / jnp.sqrt(shape[1]) for shape in shapes))
        return SignSymmetryState(tuple(jnp.abs(r) for r in _random_feedback(key, shapes)))

    def update(params, state: SignSymmetryState, batch: Batch, *, key):
        del key
        loss, error, activity = _forward(net, params, batch)
        feedback = tuple(
            feedback_scale * jnp.sign(layer["kernel"].T) * magnitude
            for layer, magnitude in zip(params[1:], state.magnitudes)
        )
        updates = layer_updates(activity, chained_deltas(net, activity, error, feedback))
        return updates, state, {"loss": loss}

    return LearningRule(init, update)


@register_rule("kolen_pollack")
def kolen_pollack(
    net: Network, *, feedback_learning_rate: float = 0.01, weight_decay: float = 1e-4
) -> LearningRule:
    """Kolen–Pollack learning (Kolen & Pollack 1994; Akrout, Wilson, Humphreys, Lillicrap & Tweed 2019, NeurIPS).

    δ_l = (δ_{l+1} B_l) ⊙ f'(a_l); forward update ΔW_l = h_lᵀ δ_l + λ W_l (gradient sign);
    feedback B_l ← B_l − η_B (ΔW_{l+1}ᵀ_local + λ B_l), the transpose of the forward layer's local update.
    When the optimizer is SGD with learning rate η_B, W_{l+1} − B_lᵀ shrinks by (1 − η_B λ) every step.
    """

    def init(key, params):
        del params
        return FeedbackState(_random_feedback(key, _chained_feedback_shapes(net)))

    def update(params, state: FeedbackState, batch: Batch, *, key):
        del key
        loss, error, activity = _forward(net, params, batch)
        local = layer_updates(activity, chained_deltas(net, activity, error, state.feedback))
        updates = tuple(
            {"kernel": u["kernel"] + weight_decay * p["kernel"], "bias": u["bias"]} for u, p in zip(local, params)
        )
        feedback = tuple(
            b - feedback_learning_rate * (u["kernel"].T + weight_decay * b)
            for b, u in zip(state.feedback, local[1:])
        )
        distance = sum(
            jnp.sum((p["kernel"] - b.T) ** 2) for p, b in zip(params[1:], state.feedback)
        )
        return updates, FeedbackState(feedback), {"loss": loss, "feedback_distance": jnp.sqrt(distance)}

    return LearningRule(init, update)
