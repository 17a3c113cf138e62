"""Predictive coding (Whittington & Bogacz 2017) as a learning rule for ``rulelab.mlp``.

Every hidden layer ``l`` gets value nodes ``v_l`` (one per preactivation ``a_l`` of the network). Each layer predicts
the next, ``μ_0 = x W_0 + b_0`` and ``μ_l = f(v_{l-1}) W_l + b_l``, and the per-sample energy is

    F(v) = Σ_{l<L-1} ½‖v_l − μ_l‖² + β · CE(μ_{L-1}, y)

where ``μ_{L-1}`` are the predicted logits and β is the output nudge (``output_nudge``). Inference descends F in
``v`` starting at the feed-forward values (where every hidden error ``ε_l = v_l − μ_l`` is zero):

    v_l ← v_l − γ (ε_l − f'(v_l) ⊙ ε_{l+1} W_{l+1}ᵀ),        ε_{L-1} := −β (softmax(μ_{L-1}) − onehot(y))

and the weights follow the local rule ``ΔW_l ∝ f(v_{l-1})ᵀ ε_l``. The gradient-signed update returned here is
``(1/β) ∂F/∂θ`` averaged over the batch: ``∂/∂W_l = −h_lᵀ ε_l / (β B)``, ``h_0 = x``, ``h_l = f(v_{l-1})``.

With a squared-error loss, β = 1 is exactly the clamped output of Whittington & Bogacz (the output error ``t − μ``);
with cross-entropy it is the same energy with the loss as output term. As β → 0 with inference converged,
``(1/β) ∂F/∂θ`` tends to the backprop gradient (the energy at the fixed point is β·loss + O(β²); Whittington &
Bogacz 2017, Millidge, Song, Salvatori, Lukasiewicz & Bogacz 2022). The default β = 0.1 is a weak nudge.

Stability. Near the fixed point ∂²F/∂v² = MᵀM with ‖M‖ ≤ 1 + max_l ‖W_l‖₂ (for |f'| ≤ 1), so a fixed γ that is
safe at initialisation diverges once training has grown the weights. The inference step is therefore
min(γ, 1/(1 + σ)²), with σ the largest singular value of the kernels above the first, estimated by one
warm-started power-iteration step per update (the rule's state). The fixed-prediction variant is linear and
triangular in the errors, stable for any γ in (0, 2), and is not capped.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Batch, LearningRule, Params, softmax_cross_entropy
from rulelab.nets.mlp import Activity, Network
from rulelab.registry import register_rule
from rulelab.rules.credit_assignment import layer_updates

PREDICTIVE_CODING_VARIANTS = ("standard", "fixed_prediction", "incremental")


def inner_loop(body: Callable[[Array, Any], Any], carry: Any, steps: int | Array) -> Any:
    """``lax.fori_loop(0, steps, body, carry)``: a scan for a Python-int ``steps`` (reverse-differentiable), a
    while loop when ``steps`` is traced (so a sweep can vmap over the number of inner steps)."""
    if not isinstance(steps, int):
        steps = jnp.asarray(steps).astype(jnp.int32)
    return jax.lax.fori_loop(0, steps, body, carry)


class Errors(NamedTuple):
    """Prediction errors of one inference state (per sample)."""

    presynaptic: tuple[Array, ...]  # h_l = x or f(anchor_{l-1}): [batch, in_l] for every layer l
    errors: tuple[Array, ...]  # ε_l: [batch, out_l]; the last one is the nudge −β (softmax − onehot)
    output_loss: Array  # [batch] cross-entropy of the predicted logits μ_{L-1}


def prediction_errors(net: Network, params: Params, batch: Batch, values, anchors, nudge) -> Errors:
    """ε_l = v_l − μ_l for hidden layers and the output nudge, with predictions made from ``anchors``.

    ``anchors`` are the values that predictions and gains are computed from: the current values for standard PC,
    the feed-forward values for the fixed-prediction assumption.
    """
    presynaptic = (batch.x, *(net.activation(a) for a in anchors))
    predictions = tuple(h @ layer["kernel"] + layer["bias"] for h, layer in zip(presynaptic, params))
    logits = predictions[-1]
    log_probs = jax.nn.log_softmax(logits)
    output_loss = -jnp.take_along_axis(log_probs, batch.y[:, None].astype(jnp.int32), axis=1)[:, 0]
    onehot = jax.nn.one_hot(batch.y, logits.shape[-1], dtype=logits.dtype)
    top = -nudge * (jnp.exp(log_probs) - onehot)  # per-sample −β ∂CE/∂logits
    hidden = tuple(v - mu for v, mu in zip(values, predictions[:-1]))
    return Errors(presynaptic, (*hidden, top), output_loss)


def value_gradient(net: Network, params: Params, errors: Errors, anchors) -> tuple[Array, ...]:
    """∂F/∂v_l = ε_l − f'(anchor_l) ⊙ ε_{l+1} W_{l+1}ᵀ for every hidden layer."""
    return tuple(
        eps - net.activation_derivative(anchor) * (eps_above @ layer_above["kernel"].T)
        for eps, eps_above, anchor, layer_above in zip(errors.errors[:-1], errors.errors[1:], anchors, params[1:])
    )


def energy(errors: Errors, nudge) -> Array:
    """Mean over the batch of F = Σ ½‖ε_l‖² + β CE."""
    squared = sum(jnp.sum(eps**2, axis=-1) for eps in errors.errors[:-1])
    return jnp.mean(0.5 * squared + nudge * errors.output_loss)


def weight_gradient(errors: Errors, nudge) -> Params:
    """(1/β) ∂F/∂θ, batch-averaged: {"kernel": −h_lᵀ ε_l / (βB), "bias": −Σ ε_l / (βB)}."""
    scale = -1.0 / (nudge * errors.errors[0].shape[0])
    deltas = tuple(scale * eps for eps in errors.errors)
    return layer_updates(Activity(errors.presynaptic, ()), deltas)


def residual_norm(gradient: tuple[Array, ...], nudge) -> Array:
    """RMS over samples of ‖∂F/∂v‖ in units of β (zero at an exact fixed point)."""
    squared = sum(jnp.sum(g**2, axis=-1) for g in gradient)
    return jnp.sqrt(jnp.mean(squared)) / nudge


class PredictiveCodingState(NamedTuple):
    """Power-iteration estimates used to keep inference stable as the weights grow."""

    singular_vectors: tuple[Array, ...]  # q_l: [out_{l+1}], leading right singular vector of W_{l+1} (hidden → next)


def power_iteration(params: Params, vectors: tuple[Array, ...]) -> tuple[tuple[Array, ...], Array]:
    """One warm-started power-iteration step per kernel above the first; returns the new vectors and the largest
    singular-value estimate max_l ‖W_{l+1} q_l‖ (a lower bound that tightens over training steps)."""
    new_vectors, norms = [], []
    for layer, q in zip(params[1:], vectors):
        q = layer["kernel"].T @ (layer["kernel"] @ q)
        q = q / (jnp.linalg.norm(q) + 1e-12)
        new_vectors.append(q)
        norms.append(jnp.linalg.norm(layer["kernel"] @ q))
    return tuple(new_vectors), jnp.max(jnp.stack(norms)) if norms else jnp.zeros(())


def _tree_axpy(a, x, y):
    return jax.tree.map(lambda xi, yi: a * xi + yi, x, y)


def _make_predictive_coding(net, variant, inference_steps, inference_rate, output_nudge, weight_rate) -> LearningRule:
    if variant not in PREDICTIVE_CODING_VARIANTS:
        raise ValueError(f"unknown predictive_coding variant {variant!r}; valid: {', '.join(PREDICTIVE_CODING_VARIANTS)}")
    fixed = variant == "fixed_prediction"
    incremental = variant == "incremental"

    def errors_at(params, batch, values, feedforward):
        anchors = feedforward if fixed else values
        return prediction_errors(net, params, batch, values, anchors, output_nudge), anchors

    def init(key, params):
        keys = jax.random.split(key, max(len(params) - 1, 1))
        vectors = (jax.random.normal(k, (layer["kernel"].shape[1],)) for k, layer in zip(keys, params[1:]))
        return PredictiveCodingState(tuple(v / jnp.linalg.norm(v) for v in vectors))

    def update(params, state: PredictiveCodingState, batch: Batch, *, key):
        del key
        logits, activity = net.apply(params, batch.x)
        feedforward = activity.preactivations[:-1]  # v̂_l: where inference starts (all hidden ε_l = 0)
        vectors, largest_singular_value = power_iteration(params, state.singular_vectors)
        # In the small-error regime ∂²F/∂v² = MᵀM with ‖M‖ ≤ 1 + max‖W‖ (|f'| ≤ 1): steps below 1/(1 + σ)² are
        # stable whatever the weights have grown to. Fixed-prediction inference is stable for any γ in (0, 2).
        rate = inference_rate if fixed else jnp.minimum(inference_rate, 1.0 / (1.0 + largest_singular_value) ** 2)

        def value_step(weights, values):
            errors, anchors = errors_at(weights, batch, values, feedforward)
            return _tree_axpy(-rate, value_gradient(net, weights, errors, anchors), values)

        def incremental_step(_, carry):  # Salvatori et al.: a weight step after every value step
            values, weights, gradient_sum = carry
            values = value_step(weights, values)
            gradient = weight_gradient(errors_at(weights, batch, values, feedforward)[0], output_nudge)
            return values, _tree_axpy(-weight_rate, gradient, weights), jax.tree.map(jnp.add, gradient_sum, gradient)

        if incremental:
            zeros = jax.tree.map(jnp.zeros_like, params)
            values, weights, gradient_sum = inner_loop(incremental_step, (feedforward, params, zeros), inference_steps)
            updates = jax.tree.map(lambda g: g / jnp.maximum(inference_steps, 1), gradient_sum)
            final_errors, anchors = errors_at(weights, batch, values, feedforward)
        else:
            weights = params
            values = inner_loop(lambda _, values: value_step(params, values), feedforward, inference_steps)
            final_errors, anchors = errors_at(params, batch, values, feedforward)
            updates = weight_gradient(final_errors, output_nudge)
        initial_errors, _ = errors_at(params, batch, feedforward, feedforward)
        metrics = {
            "loss": softmax_cross_entropy(logits, batch.y),
            "energy_initial": energy(initial_errors, output_nudge),
            "energy_final": energy(final_errors, output_nudge),
            "inference_residual": residual_norm(value_gradient(net, weights, final_errors, anchors), output_nudge),
            "inference_rate": jnp.asarray(rate, jnp.float32),
        }
        return updates, PredictiveCodingState(vectors), metrics

    return LearningRule(init, update)


@register_rule("predictive_coding")
def predictive_coding(
    net: Network,
    *,
    variant: str = "standard",
    inference_steps: int = 20,
    inference_rate: float = 0.1,
    output_nudge: float = 0.1,
    weight_rate: float = 1e-3,
) -> LearningRule:
    """Predictive coding (Whittington & Bogacz 2017, Neural Computation 29:1229).

    Inference: v_l ← v_l − γ(ε_l − f'(v_l) ⊙ ε_{l+1}W_{l+1}ᵀ) for ``inference_steps`` steps from the feed-forward
    values, ε_l = v_l − μ_l, top error −β ∂CE/∂logits (β = ``output_nudge``), γ = min(``inference_rate``,
    1/(1 + σ_max)²); update ΔW_l = −h_lᵀε_l/(βB) (gradient sign). Metrics: loss, energy_initial, energy_final,
    inference_residual (RMS ‖∂F/∂v‖/β after inference), inference_rate (the γ used).

    ``variant="standard"``: predictions and gains follow the current values.
    ``variant="fixed_prediction"``: predictions μ_l, gains f'(v̂_l) and presynaptic rates stay at their
    feed-forward values (Millidge et al. 2022; Song et al. 2020, Z-IL); the fixed point is backprop exactly, and
    with γ = 1 it is reached after L−1 steps (see ``predictive_coding_fixed_prediction``).
    ``variant="incremental"``: incremental PC (Salvatori et al. 2024, ICLR): after every value step the weights
    take a step θ ← θ − η_w (1/β)∂F/∂θ (``weight_rate``); the returned update is the mean of those T gradients, so
    plain SGD at learning rate T·η_w reproduces the incremental trajectory exactly. In the harness use
    ``TrainConfig(rule="predictive_coding", rule_options=(("variant", "incremental"),))``.
    """
    return _make_predictive_coding(net, variant, inference_steps, inference_rate, output_nudge, weight_rate)


@register_rule("predictive_coding_fixed_prediction")
def predictive_coding_fixed_prediction(
    net: Network, *, inference_steps: int | None = None, inference_rate: float = 1.0, output_nudge: float = 1.0
) -> LearningRule:
    """Predictive coding under the fixed-prediction assumption (Millidge et al. 2022; Song et al. 2020, Z-IL).

    ``predictive_coding(variant="fixed_prediction")`` with γ = 1 and L−1 inference steps by default: errors then
    move down one layer per step, ε_l = f'(v̂_l) ⊙ ε_{l+1}W_{l+1}ᵀ, and the update equals backprop's exactly.
    """
    steps = net.num_layers - 1 if inference_steps is None else inference_steps
    return _make_predictive_coding(net, "fixed_prediction", steps, inference_rate, output_nudge, 0.0)
