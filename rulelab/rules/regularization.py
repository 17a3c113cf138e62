"""Regularization baselines for continual learning, as wrappers around any inner learning rule.

Each adds the gradient of a quadratic anchor penalty to the inner rule's (gradient-signed) updates, so EWC around
feedback alignment is ``make_rule("ewc", net, inner="feedback_alignment")``. The importance of each parameter is
computed at task boundaries by ``end_task`` (see ``rulelab.rules.task_aware``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import LearningRule, Params
from rulelab.registry import register_rule
from rulelab.rules.task_aware import TaskAwareRule, chain_end_task, resolve_inner


def _zeros_like(tree: Params) -> Params:
    return jax.tree.map(jnp.zeros_like, tree)


def _add(a: Params, b: Params) -> Params:
    return jax.tree.map(jnp.add, a, b)


def _tree_mean(tree: Params) -> jax.Array:
    """Mean of every entry of every leaf (a one-number summary for metrics)."""
    return jnp.mean(jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)]))


def sampled_fisher(net: Any, params: Params, x: jax.Array, key: jax.Array) -> Params:
    """Diagonal Fisher information ``F_i = mean_n (∂ log p_θ(ŷ_n | x_n) / ∂θ_i)²`` with ``ŷ_n ~ p_θ(· | x_n)``.

    Labels are drawn from the model's own softmax (the true Fisher, not the empirical one), one per example.
    """
    logits, _ = net.apply(params, x)
    sampled = jax.random.categorical(key, logits)

    def log_likelihood(p, example, label):
        return jax.nn.log_softmax(net.apply(p, example[None])[0][0])[label]

    per_example = jax.vmap(jax.grad(log_likelihood), in_axes=(None, 0, 0))(params, x, sampled)
    return jax.tree.map(lambda g: jnp.mean(g**2, axis=0), per_example)


class EWCState(NamedTuple):
    inner: Any  # the inner rule's state
    fisher: Params  # Σ_k γ^(K-k) F_k, shaped like params
    fisher_anchor: Params  # Σ_k γ^(K-k) F_k ⊙ θ*_k, shaped like params


@register_rule("ewc")
def ewc(
    net: Any,
    *,
    inner: str | LearningRule | TaskAwareRule = "backprop",
    ewc_strength: float = 1e8,
    fisher_decay: float = 1.0,
) -> TaskAwareRule:
    """Elastic weight consolidation (Kirkpatrick et al. 2017, PNAS 114:3521) around an inner rule.

    Penalty (λ/2) Σ_k Σ_i F_k,i (θ_i − θ*_k,i)² with F_k the diagonal Fisher at the end of task k and θ*_k the
    parameters there; its gradient λ (F ⊙ θ − Σ_k F_k ⊙ θ*_k), F = Σ_k F_k, is added to the inner updates. Keeping
    the two sums makes the penalty exact for every past task in constant memory. ``fisher_decay`` γ < 1 discounts
    old tasks (online EWC, Schwarz et al. 2018, ICML).
    """
    inner_rule = resolve_inner(net, inner)

    def init(key, params):
        zeros = _zeros_like(params)
        return EWCState(inner_rule.init(key, params), zeros, zeros)

    def update(params, state: EWCState, batch, *, key):
        updates, inner_state, metrics = inner_rule.update(params, state.inner, batch, key=key)
        penalty = jax.tree.map(lambda f, fa, p: ewc_strength * (f * p - fa), state.fisher, state.fisher_anchor, params)
        return _add(updates, penalty), state._replace(inner=inner_state), metrics

    def consolidate(params, state: EWCState, batch, *, key):
        fisher = sampled_fisher(net, params, batch.x, key)
        decayed = jax.tree.map(lambda f: fisher_decay * f, (state.fisher, state.fisher_anchor))
        new_fisher = _add(decayed[0], fisher)
        new_anchor = _add(decayed[1], jax.tree.map(jnp.multiply, fisher, params))
        new_state = state._replace(fisher=new_fisher, fisher_anchor=new_anchor)
        return params, new_state, {"ewc_mean_fisher": _tree_mean(fisher)}

    return TaskAwareRule(init, update, chain_end_task(inner_rule, consolidate))


class SIState(NamedTuple):
    inner: Any  # the inner rule's state
    path_integral: Params  # ω = −Σ_steps g ⊙ Δθ over the current task
    importance: Params  # Ω, summed over finished tasks
    anchor: Params  # θ* at the end of the last finished task
    task_start: Params  # θ when the current task began
    previous_params: Params  # θ handed to the previous update
    previous_updates: Params  # g returned (unregularized) by the previous update


@register_rule("synaptic_intelligence")
def synaptic_intelligence(
    net: Any,
    *,
    inner: str | LearningRule | TaskAwareRule = "backprop",
    si_strength: float = 100.0,
    si_damping: float = 0.1,
) -> TaskAwareRule:
    """Synaptic intelligence (Zenke, Poole & Ganguli 2017, ICML) around an inner rule.

    During a task ω_i += −g_i Δθ_i, with g the inner rule's unregularized update and Δθ the parameter change the
    optimizer then made; at its end Ω_i += ω_i / ((θ_i(end) − θ_i(start))² + ξ) and θ* = θ(end). The penalty
    c Σ_i Ω_i (θ_i − θ*_i)² adds 2c Ω ⊙ (θ − θ*) to the updates (c = ``si_strength``, ξ = ``si_damping``).
    """
    inner_rule = resolve_inner(net, inner)

    def path_step(state: SIState, params):
        return jax.tree.map(lambda w, g, p, q: w - g * (p - q), state.path_integral, state.previous_updates,
                            params, state.previous_params)

    def init(key, params):
        zeros = _zeros_like(params)
        return SIState(inner_rule.init(key, params), zeros, zeros, params, params, params, zeros)

    def update(params, state: SIState, batch, *, key):
        updates, inner_state, metrics = inner_rule.update(params, state.inner, batch, key=key)
        penalty = jax.tree.map(lambda o, p, a: 2.0 * si_strength * o * (p - a), state.importance, params, state.anchor)
        new_state = state._replace(inner=inner_state, path_integral=path_step(state, params),
                                   previous_params=params, previous_updates=updates)
        return _add(updates, penalty), new_state, metrics

    def consolidate(params, state: SIState, batch, *, key):
        del batch, key
        path_integral = path_step(state, params)
        importance = jax.tree.map(lambda o, w, p, s: o + w / ((p - s) ** 2 + si_damping),
                                  state.importance, path_integral, params, state.task_start)
        zeros = _zeros_like(params)
        new_state = SIState(state.inner, zeros, importance, params, params, params, zeros)
        return params, new_state, {"si_mean_importance": _tree_mean(importance)}

    return TaskAwareRule(init, update, chain_end_task(inner_rule, consolidate))
