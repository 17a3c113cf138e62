"""Equilibrium propagation (Scellier & Bengio 2017) on the layered ``rulelab.mlp`` parameters.

Mapping onto the MLP. The hidden layers form a layered continuous Hopfield network whose symmetric couplings are the
MLP's own hidden kernels and biases; the last kernel is a softmax readout that stays outside the energy and defines
the cost, as in Laborieux et al.'s (2021) cross-entropy version of EqProp. States are the hidden firing rates
``s_l = f(u_l)`` (potentials ``u_l``, l = 1..L−1) with the input ``s_0 = x`` clamped. With layer weights
``c_l = κ^l`` (κ = ``feedback_gain``) the energy and the nudged energy are

    E(s) = Σ_{l=1..L-1} c_l [ G(s_l) − s_{l-1} W_{l-1} · s_l − b_{l-1} · s_l ],   G' = f⁻¹
    F(s) = E(s) + β c_{L-1} CE(s_{L-1} W_{L-1} + b_{L-1}, y)

and relaxation moves each layer's potential toward its drive (Hopfield 1984 dynamics), one layer at a time:

    u_l ← u_l + γ (s_{l-1}W_{l-1} + b_{l-1} + κ s_{l+1}W_lᵀ − u_l)          (the top hidden layer has no s_{l+1})
    u_{L-1} also receives −β (softmax(o) − onehot(y)) W_{L-1}ᵀ,  o = s_{L-1}W_{L-1} + b_{L-1}

Because ∂E/∂W_{l-1} = −c_l s_{l-1}ᵀ s_l is a local correlation, the equilibrium-propagation theorem gives the
gradient of the loss at the free fixed point s⁰ as a difference of correlations between two equilibria,

    ∂CE(s⁰)/∂W_{l-1} = lim_{β→0} −κ^{l-L+1}/β [ s_{l-1}ᵀ s_l |_{s^β} − s_{l-1}ᵀ s_l |_{s⁰} ],

and the readout's gradient is its local delta rule at the free fixed point, s_{L-1}⁰ᵀ (softmax(o⁰) − onehot(y)).
The symmetric estimate (Laborieux et al. 2021) uses s^{+β} and s^{−β} with 1/(2β), removing the O(β) bias.

Prediction. Relaxation starts at the feed-forward pass. As κ → 0 the free fixed point becomes the harness's
feed-forward pass (``net.apply``), which is what ``rulelab`` evaluates, and the estimate becomes backprop's gradient;
at κ = 1 it is the layered Hopfield network of Scellier & Bengio, whose top-down input the feed-forward readout
never sees. Trained with κ ≥ 0.05 the network comes to lean on its top-down input: its own (free-phase) readout
stays near 98% on digits while the feed-forward readout falls to 95–96%. The default κ = 0.01 keeps the two
readouts in agreement (docs/bio_rules.md has the measurements); raise it to study the recurrent regime.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Batch, EmptyState, LearningRule, Params, softmax_cross_entropy
from rulelab.nets.mlp import Network
from rulelab.registry import register_rule
from rulelab.rules.predictive_coding import inner_loop

NUDGINGS = ("symmetric", "positive")


# f(u + d) − f(u) without cancellation: the nudged phases move the states by O(βκ), far below their size
RATE_CHANGES = {
    "tanh": lambda u, d: jnp.tanh(d) * (1.0 - jnp.tanh(u) * jnp.tanh(u + d)),
    "sigmoid": lambda u, d: -jax.nn.sigmoid(u + d) * (1.0 - jax.nn.sigmoid(u)) * jnp.expm1(-d),
    "linear": lambda u, d: d,
}


class Equilibrium(NamedTuple):
    """Potentials u_l of the hidden layers, each [batch, out_l]."""

    potentials: tuple[Array, ...]


def _rates(net: Network, state: Equilibrium, x: Array) -> tuple[Array, ...]:
    """(s_0 = x, s_1 = f(u_1), ..., s_{L-1})."""
    return (x, *(net.activation(u) for u in state.potentials))


def _readout(params: Params, rates: tuple[Array, ...]) -> Array:
    return rates[-1] @ params[-1]["kernel"] + params[-1]["bias"]


def _output_error(logits: Array, labels: Array) -> Array:
    """Per-sample ∂CE/∂o = softmax(o) − onehot(y)."""
    return jax.nn.softmax(logits) - jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)


def _nudging(params: Params, top_rates: Array, labels: Array, nudge) -> Array:
    """−β ∂CE/∂s_{L-1}: the pull of the cost on the top hidden layer."""
    logits = top_rates @ params[-1]["kernel"] + params[-1]["bias"]
    return -nudge * (_output_error(logits, labels) @ params[-1]["kernel"].T)


def _bottom_up_top_down(params: Params, rates, layer: int, feedback_gain, *, bias: bool) -> Array:
    """s_{l-1}W_{l-1} (+ b_{l-1}) + κ s_{l+1}W_lᵀ for hidden layer ``layer``; ``rates[layer + 1]`` may be absent."""
    drive = rates[layer - 1] @ params[layer - 1]["kernel"]
    if bias:
        drive = drive + params[layer - 1]["bias"]
    if layer + 1 < len(rates):
        drive = drive + feedback_gain * (rates[layer + 1] @ params[layer]["kernel"].T)
    return drive


def residual(net, params, state: Equilibrium, batch, *, nudge, feedback_gain) -> tuple[Array, ...]:
    """drive_l − u_l for every hidden layer: zero at a fixed point."""
    rates = _rates(net, state, batch.x)
    drives = [_bottom_up_top_down(params, rates, l, feedback_gain, bias=True) for l in range(1, net.num_layers)]
    drives[-1] = drives[-1] + _nudging(params, rates[-1], batch.y, nudge)
    return tuple(d - u for d, u in zip(drives, state.potentials))


def relax_deviation(net, params, base: Equilibrium, batch, *, nudge, feedback_gain, rate, steps) -> tuple[Array, ...]:
    """Deviations d_l = u_l − u_l^base after ``steps`` symmetric Gauss–Seidel sweeps at nudge strength β.

    Each layer moves toward its drive, u_l ← u_l + γ(drive_l − u_l), layer by layer up then down: with γ = 1 every
    layer update is the exact minimiser of F over that layer given its neighbours (block coordinate descent, so F
    never increases); the upward sweep carries the input, the downward one the nudge. Working with deviations
    from ``base`` (drive_l − u_l = residual_l(base) + Δdrive_l − d_l) keeps the small nudged changes exact in float32.
    """
    change = RATE_CHANGES[net.activation_name]
    base_rates = _rates(net, base, batch.x)
    base_residual = residual(net, params, base, batch, nudge=0.0, feedback_gain=feedback_gain)
    top = net.num_layers - 1
    order = [*range(1, top + 1), *range(top - 1, 0, -1)]

    def sweep(_, deviations):
        deviations = list(deviations)
        changes = [jnp.zeros_like(batch.x), *(change(u, d) for u, d in zip(base.potentials, deviations))]
        for l in order:
            target = base_residual[l - 1] + _bottom_up_top_down(params, changes, l, feedback_gain, bias=False)
            if l == top:
                target = target + _nudging(params, base_rates[top] + changes[top], batch.y, nudge)
            deviations[l - 1] = deviations[l - 1] + rate * (target - deviations[l - 1])
            changes[l] = change(base.potentials[l - 1], deviations[l - 1])
        return tuple(deviations)

    return inner_loop(sweep, tuple(jnp.zeros_like(u) for u in base.potentials), steps)


def relax(net, params, state: Equilibrium, batch, *, nudge, feedback_gain, rate, steps) -> Equilibrium:
    """The state after ``steps`` relaxation sweeps from ``state`` (see ``relax_deviation``)."""
    deviations = relax_deviation(net, params, state, batch, nudge=nudge, feedback_gain=feedback_gain, rate=rate,
                                 steps=steps)
    return Equilibrium(tuple(u + d for u, d in zip(state.potentials, deviations)))


def correlation_change(net: Network, free: Equilibrium, x: Array, high, low, feedback_gain) -> Params:
    """K(high) − K(low) for K_l = κ^{l-L+1} s_{l-1}ᵀ s_l / B (and κ^{l-L+1} Σ s_l / B), with the states given as
    deviations from the free equilibrium; a⁺b⁺ − a⁻b⁻ = Δa b̄ + ā Δb avoids subtracting two large products."""
    change = RATE_CHANGES[net.activation_name]
    rates = _rates(net, free, x)
    zeros = jnp.zeros_like(x)
    high = [zeros, *(change(u, d) for u, d in zip(free.potentials, high))]
    low = [zeros, *(change(u, d) for u, d in zip(free.potentials, low))]
    difference = [h - l for h, l in zip(high, low)]
    mean = [s + 0.5 * (h + l) for s, h, l in zip(rates, high, low)]
    top, batch = net.num_layers - 1, x.shape[0]
    return tuple(
        {
            "kernel": feedback_gain ** (l - top) * (difference[l - 1].T @ mean[l] + mean[l - 1].T @ difference[l]) / batch,
            "bias": feedback_gain ** (l - top) * jnp.sum(difference[l], axis=0) / batch,
        }
        for l in range(1, top + 1)
    )


def readout_gradient(params: Params, state: Equilibrium, batch: Batch, net: Network) -> dict:
    """The readout's local delta rule at a state: s_{L-1}ᵀ (softmax(o) − onehot) / B."""
    rates = _rates(net, state, batch.x)
    error = _output_error(_readout(params, rates), batch.y) / batch.x.shape[0]
    return {"kernel": rates[-1].T @ error, "bias": jnp.sum(error, axis=0)}


@register_rule("equilibrium_propagation")
def equilibrium_propagation(
    net: Network,
    *,
    nudging: str = "symmetric",
    nudge: float = 0.1,
    feedback_gain: float = 0.01,
    relaxation_rate: float = 1.0,
    free_steps: int = 10,
    nudged_steps: int = 5,
) -> LearningRule:
    """Equilibrium propagation (Scellier & Bengio 2017, Front. Comput. Neurosci. 11:24) on a layered Hopfield energy.

    Free phase: ``free_steps`` relaxation sweeps from the feed-forward pass to s⁰; nudged phase(s): ``nudged_steps``
    sweeps from s⁰ at strength ±β (``nudge``); γ = ``relaxation_rate``. Hidden-layer update (gradient sign), with
    K_l = κ^{l-L+1} s_{l-1}ᵀ s_l / B:
    ``nudging="positive"``: −(K(s^β) − K(s⁰))/β;  ``nudging="symmetric"``: −(K(s^{+β}) − K(s^{−β}))/(2β)
    (Laborieux, Ernoult, Scellier, Bengio, Grollier & Querlioz 2021, Front. Neurosci. 15:633674). Readout:
    s_{L-1}⁰ᵀ(softmax(o⁰) − onehot)/B. κ = ``feedback_gain`` (> 0) scales the top-down input.
    """
    if nudging not in NUDGINGS:
        raise ValueError(f"unknown equilibrium_propagation nudging {nudging!r}; valid: {', '.join(NUDGINGS)}")
    if net.activation_name not in RATE_CHANGES:  # the Hopfield energy needs G' = f⁻¹
        raise ValueError(f"equilibrium_propagation needs an invertible activation; valid: {', '.join(RATE_CHANGES)}")

    def init(key, params):
        del key, params
        return EmptyState()

    def update(params, state, batch: Batch, *, key):
        del key
        logits, activity = net.apply(params, batch.x)
        settings = dict(feedback_gain=feedback_gain, rate=relaxation_rate)
        free = relax(net, params, Equilibrium(activity.preactivations[:-1]), batch, nudge=0.0, steps=free_steps,
                     **settings)
        high = relax_deviation(net, params, free, batch, nudge=nudge, steps=nudged_steps, **settings)
        if nudging == "symmetric":
            low = relax_deviation(net, params, free, batch, nudge=-nudge, steps=nudged_steps, **settings)
            scale = 2.0 * nudge
        else:
            low, scale = tuple(jnp.zeros_like(d) for d in high), nudge
        hidden = correlation_change(net, free, batch.x, high, low, feedback_gain)
        updates = (*jax.tree.map(lambda k: -k / scale, hidden), readout_gradient(params, free, batch, net))
        free_residual = residual(net, params, free, batch, nudge=0.0, feedback_gain=feedback_gain)
        metrics = {
            "loss": softmax_cross_entropy(logits, batch.y),
            "free_phase_loss": softmax_cross_entropy(_readout(params, _rates(net, free, batch.x)), batch.y),
            "free_phase_residual": jnp.sqrt(jnp.mean(sum(jnp.sum(r**2, axis=-1) for r in free_residual))),
        }
        return updates, state, metrics

    return LearningRule(init, update)
