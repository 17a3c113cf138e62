"""Burst-dependent plasticity for deep networks: burstprop (Payeur et al. 2021) and BurstCCN (Greedy et al. 2022).

Every unit of a hidden layer has an event rate ``e_l`` (its somatic output) and a burst probability ``p_l`` set by
its apical dendrite; the burst rate ``b_l = p_l e_l`` is what feedback synapses carry down.

- Event rates: ``e_l = f(a_l) − f_min`` (the MLP's own forward pass shifted to be non-negative: ``1 + tanh``,
  ``sigmoid``, ``relu``); the output's event rates are the softmax probabilities.
- Burst probability: ``p = P(u) = 2p_b σ(2u/p_b)``, baseline ``P(0) = p_b``, slope ``P'(0) = 1``.
- Apical potential: ``u_l = g_l ⊙ (b_{l+1} Y_l)`` with fixed feedback ``Y_l`` (shaped like W_{l+1}ᵀ) and the
  dendritic gain ``g_l = f'(a_l)/e_l`` (Payeur's h(e); ``1 − e`` for sigmoid units as in their model).
- Teaching signal at the output: ``u_L = τ (t − e_L)/e_L`` for target ``t`` (one-hot), so
  ``(p_L − p_b) e_L ≈ τ (t − e_L) = −τ ∂CE/∂logits`` for a small teaching strength τ.
- Plasticity: ``ΔW_l ∝ h_lᵀ [(p_l − p̄_l) ⊙ e_l]`` with presynaptic rates ``h_l``; the gradient-signed update
  returned here is ``−h_lᵀ[(p_l − p̄_l) e_l] / (τ B)``.

In the small-signal regime (τ → 0, ``P`` linear around the reference) the burst deviation obeys
``(p_l − p̄_l) e_l ≈ P'(ū_l) f'(a_l) ⊙ ((p_{l+1} − p̄_{l+1}) e_{l+1}) Y_l``: backprop's recursion with Y in place
of Wᵀ, up to the per-unit slope ``P'(ū_l)`` of the reference pass. The two rules differ in how ``p̄`` is obtained:

- ``burstprop``: ``p̄`` comes from a reference pass without teaching (``u_L = 0``) through the same feedback, so
  ``ū_l = g_l ⊙ (b̄_{l+1} Y_l) ≠ 0`` and ``P'(ū_l) < 1`` varies from unit to unit.
- ``burstccn``: interneurons driven by the event rates above subtract ``e_{l+1} Q_l`` with ``Q_l = p_b Y_l`` (the
  fixed point of Greedy et al.'s Q-plasticity), so without teaching every apical potential is 0 and
  ``p̄ = p_b``: one pass, no reference phase, and ``P'(0) = 1`` exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Batch, LearningRule, softmax_cross_entropy
from rulelab.nets.mlp import Network
from rulelab.registry import register_rule
from rulelab.rules.credit_assignment import layer_updates, transposed_kernels
from rulelab.rules.feedback_alignment import FeedbackState, _chained_feedback_shapes, _random_feedback

FEEDBACK_KINDS = ("random", "symmetric")
EVENT_RATE_FLOOR = {"tanh": -1.0, "sigmoid": 0.0, "relu": 0.0}  # f_min: e = f(a) − f_min ≥ 0
_TINY = 1e-12


def burst_probability(apical: Array, baseline) -> Array:
    """P(u) = 2 p_b σ(2u / p_b): P(0) = p_b, P'(0) = 1, values in (0, 2 p_b)."""
    return 2.0 * baseline * jax.nn.sigmoid(2.0 * apical / baseline)


class BurstActivity(NamedTuple):
    """Somatic quantities of one forward pass (no teaching involved)."""

    event_rates: tuple[Array, ...]  # e_l: [batch, out_l] per hidden layer, then the softmax output [batch, classes]
    gains: tuple[Array, ...]  # g_l = f'(a_l)/e_l: [batch, out_l] per hidden layer


def burst_activity(net: Network, activity, logits: Array) -> BurstActivity:
    floor = EVENT_RATE_FLOOR[net.activation_name]
    hidden = activity.preactivations[:-1]
    rates = tuple(net.activation(a) - floor for a in hidden)
    gains = tuple(net.activation_derivative(a) / jnp.maximum(e, _TINY) for a, e in zip(hidden, rates))
    return BurstActivity((*rates, jax.nn.softmax(logits)), gains)


def output_teaching(probabilities: Array, labels: Array, teaching_strength) -> Array:
    """Apical potential of the output units: u_L = τ (t − e_L) / e_L."""
    onehot = jax.nn.one_hot(labels, probabilities.shape[-1], dtype=probabilities.dtype)
    return teaching_strength * (onehot - probabilities) / jnp.maximum(probabilities, _TINY)


def burst_cascade(somatic: BurstActivity, top_apical: Array, feedback, baseline, interneurons=None):
    """Burst probabilities of every layer, top down: p_l = P(g_l ⊙ (b_{l+1} Y_l − e_{l+1} Q_l)).

    ``interneurons`` (the Q_l) are left out for burstprop. Returns (p_0, ..., p_L).
    """
    probabilities = [burst_probability(top_apical, baseline)]
    for layer in reversed(range(len(somatic.gains))):
        above = probabilities[0] * somatic.event_rates[layer + 1] @ feedback[layer]
        if interneurons is not None:
            above = above - somatic.event_rates[layer + 1] @ interneurons[layer]
        probabilities.insert(0, burst_probability(somatic.gains[layer] * above, baseline))
    return tuple(probabilities)


def burst_updates(activity, somatic: BurstActivity, probabilities, references, teaching_strength):
    """Gradient-signed ΔW_l = −h_lᵀ[(p_l − p̄_l) e_l] / (τB), and the same for biases."""
    scale = -1.0 / (teaching_strength * somatic.event_rates[0].shape[0])
    deltas = tuple(
        scale * (p - p_ref) * e for p, p_ref, e in zip(probabilities, references, somatic.event_rates)
    )
    return layer_updates(activity, deltas)


def _feedback_matrices(feedback: str, params, state: FeedbackState, feedback_scale):
    matrices = transposed_kernels(params) if feedback == "symmetric" else state.feedback
    return tuple(feedback_scale * y for y in matrices)


def _make_burst_rule(net: Network, *, single_phase: bool, feedback, baseline_burst_probability,
                     teaching_strength, feedback_scale) -> LearningRule:
    name = "burstccn" if single_phase else "burstprop"
    if feedback not in FEEDBACK_KINDS:
        raise ValueError(f"unknown {name} feedback {feedback!r}; valid: {', '.join(FEEDBACK_KINDS)}")
    if net.activation_name not in EVENT_RATE_FLOOR:
        raise ValueError(f"{name} needs non-negative event rates; valid activations: {', '.join(EVENT_RATE_FLOOR)}")
    baseline = baseline_burst_probability

    def init(key, params):
        del params
        if feedback == "symmetric":
            return FeedbackState(())
        return FeedbackState(_random_feedback(key, _chained_feedback_shapes(net)))

    def update(params, state: FeedbackState, batch: Batch, *, key):
        del key
        logits, activity = net.apply(params, batch.x)
        somatic = burst_activity(net, activity, logits)
        feedback_matrices = _feedback_matrices(feedback, params, state, feedback_scale)
        top = output_teaching(somatic.event_rates[-1], batch.y, teaching_strength)
        if single_phase:
            interneurons = tuple(baseline * y for y in feedback_matrices)
            probabilities = burst_cascade(somatic, top, feedback_matrices, baseline, interneurons)
            references = tuple(jnp.full_like(p, baseline) for p in probabilities)
        else:
            probabilities = burst_cascade(somatic, top, feedback_matrices, baseline)
            references = burst_cascade(somatic, jnp.zeros_like(top), feedback_matrices, baseline)
        updates = burst_updates(activity, somatic, probabilities, references, teaching_strength)
        metrics = {
            "loss": softmax_cross_entropy(logits, batch.y),
            "reference_burst_probability": jnp.mean(jnp.stack([jnp.mean(p) for p in references[:-1]])),
            "burst_probability_change": jnp.mean(
                jnp.stack([jnp.mean(jnp.abs(p - r)) for p, r in zip(probabilities[:-1], references[:-1])])
            ),
        }
        return updates, state, metrics

    return LearningRule(init, update)


def _burst_factory(name: str, *, single_phase: bool, doc: str):
    """The registered factory of one burst rule (both share their hyperparameters)."""

    def factory(
        net: Network,
        *,
        feedback: str = "random",
        baseline_burst_probability: float = 0.2,
        teaching_strength: float = 1e-3,
        feedback_scale: float = 1.0,
    ) -> LearningRule:
        return _make_burst_rule(net, single_phase=single_phase, feedback=feedback,
                                baseline_burst_probability=baseline_burst_probability,
                                teaching_strength=teaching_strength, feedback_scale=feedback_scale)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return register_rule(name)(factory)


burstprop = _burst_factory("burstprop", single_phase=False, doc="""Burstprop, the rate-based deep-network model of
    Payeur, Guerguiev, Zenke, Richards & Naud 2021 (Nature Neuroscience 24:1010).

    p_l = P(g_l ⊙ b_{l+1}Y_l), b = p e, teaching u_L = τ(t − e_L)/e_L (τ = ``teaching_strength``); p̄_l from a
    reference pass without teaching; ΔW_l = −h_lᵀ[(p_l − p̄_l) e_l]/(τB) (gradient sign). ``feedback="random"``:
    fixed random Y_l in the rule state; ``"symmetric"``: Y_l = W_{l+1}ᵀ (weight transport, the control). Y is
    multiplied by ``feedback_scale``; p_b = ``baseline_burst_probability`` (at most 0.5).
    """)

burstccn = _burst_factory("burstccn", single_phase=True, doc="""BurstCCN (Greedy, Zhu, Pemberton, Mellor & Costa
    2022, NeurIPS): single-phase burst-dependent learning.

    Apical potential u_l = g_l ⊙ (b_{l+1}Y_l − e_{l+1}Q_l) with interneuron weights Q_l = p_b Y_l cancelling the
    baseline burst feedback, so p̄ = p_b without a reference pass; ΔW_l = −h_lᵀ[(p_l − p_b) e_l]/(τB). Same
    hyperparameters as ``burstprop``.
    """)
