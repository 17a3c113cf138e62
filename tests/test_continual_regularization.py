"""EWC and synaptic intelligence: their penalties, Fisher and path-integral importance, checked against the maths."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.core import Batch
from rulelab.rules.regularization import sampled_fisher

NET = rulelab.mlp((3, 4), "linear")  # one softmax layer: the Fisher has a closed form


def _batch(key, n=16):
    x_key, y_key = jax.random.split(key)
    return Batch(jax.random.normal(x_key, (n, 3)), jax.random.randint(y_key, (n,), 0, 4))


def _shifted(params, amount):
    return jax.tree.map(lambda p: p + amount, params)


def test_sampled_fisher_matches_the_expected_fisher():
    """For softmax regression ∂log p_c/∂W = x (e_c − p)ᵀ, so F = Σ_c p_c (x (e_c − p)ᵀ)², estimated by sampling."""
    params = NET.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (1, 3))
    fisher = sampled_fisher(NET, params, jnp.repeat(x, 20000, axis=0), jax.random.key(2))
    p = jax.nn.softmax(NET.apply(params, x)[0][0])
    residual = jnp.eye(4) - p  # row c: e_c − p
    expected_kernel = jnp.einsum("c,i,cj->ij", p, x[0] ** 2, residual**2)
    np.testing.assert_allclose(fisher[0]["kernel"], expected_kernel, rtol=0.1, atol=2e-3)
    np.testing.assert_allclose(fisher[0]["bias"], jnp.einsum("c,cj->j", p, residual**2), rtol=0.1, atol=2e-3)


def test_ewc_penalty_vanishes_at_the_anchor_and_is_linear_around_it():
    rule = rulelab.make_rule("ewc", NET, ewc_strength=3.0)
    inner = rulelab.make_rule("backprop", NET)
    params = NET.init(jax.random.key(0))
    state = rule.init(jax.random.key(1), params)
    params, state, _ = rule.end_task(params, state, _batch(jax.random.key(2), 64), key=jax.random.key(3))
    fisher = state.fisher
    batch = _batch(jax.random.key(4))
    plain = inner.update(params, inner.init(jax.random.key(0), params), batch, key=jax.random.key(5))[0]
    at_anchor = rule.update(params, state, batch, key=jax.random.key(5))[0]
    for a, b in zip(jax.tree.leaves(at_anchor), jax.tree.leaves(plain)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    moved = _shifted(params, 0.5)
    plain_moved = inner.update(moved, inner.init(jax.random.key(0), moved), batch, key=jax.random.key(5))[0]
    penalized = rule.update(moved, state, batch, key=jax.random.key(5))[0]
    for u, g, f in zip(jax.tree.leaves(penalized), jax.tree.leaves(plain_moved), jax.tree.leaves(fisher)):
        np.testing.assert_allclose(u - g, 3.0 * f * 0.5, rtol=1e-4, atol=1e-6)


def test_ewc_remembers_every_past_anchor_exactly():
    """With two tasks the gradient is λ Σ_k F_k (θ − θ*_k), whatever F_k and θ*_k were."""
    rule = rulelab.make_rule("ewc", NET, ewc_strength=1.0)
    first = NET.init(jax.random.key(0))
    state = rule.init(jax.random.key(1), first)
    _, state, _ = rule.end_task(first, state, _batch(jax.random.key(2), 32), key=jax.random.key(3))
    fisher_1 = state.fisher
    second = _shifted(first, 0.3)
    _, state, _ = rule.end_task(second, state, _batch(jax.random.key(4), 32), key=jax.random.key(5))
    fisher_2 = jax.tree.map(jnp.subtract, state.fisher, fisher_1)
    theta = _shifted(first, -0.2)
    expected = jax.tree.map(lambda f1, f2, t, a, b: f1 * (t - a) + f2 * (t - b),
                            fisher_1, fisher_2, theta, first, second)
    actual = jax.tree.map(lambda f, fa, t: f * t - fa, state.fisher, state.fisher_anchor, theta)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6)


def test_synaptic_intelligence_path_integral_under_plain_sgd():
    """With θ ← θ − η g, ω = −Σ g Δθ = η Σ g², so Ω = η Σ g² / ((θ_end − θ_start)² + ξ) after the task."""
    rule = rulelab.make_rule("synaptic_intelligence", NET, si_strength=2.0, si_damping=0.1)
    params = NET.init(jax.random.key(0))
    start = params
    state = rule.init(jax.random.key(1), params)
    squared_sum = jax.tree.map(jnp.zeros_like, params)
    learning_rate = 0.1
    for step in range(5):
        updates, state, _ = rule.update(params, state, _batch(jax.random.fold_in(jax.random.key(2), step)),
                                        key=jax.random.key(3))
        squared_sum = jax.tree.map(lambda s, g: s + g**2, squared_sum, updates)  # no penalty yet: g = gradient
        params = jax.tree.map(lambda p, g: p - learning_rate * g, params, updates)
    params, state, _ = rule.end_task(params, state, _batch(jax.random.key(9)), key=jax.random.key(4))
    expected = jax.tree.map(lambda s, p, q: learning_rate * s / ((p - q) ** 2 + 0.1), squared_sum, params, start)
    for a, e in zip(jax.tree.leaves(state.importance), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-7)
    # the penalty now pulls towards the end-of-task parameters: 2 c Ω (θ − θ*)
    batch = _batch(jax.random.key(5))
    inner = rulelab.make_rule("backprop", NET)
    moved = _shifted(params, 0.25)
    plain = inner.update(moved, inner.init(jax.random.key(0), moved), batch, key=jax.random.key(6))[0]
    penalized = rule.update(moved, state, batch, key=jax.random.key(6))[0]
    for u, g, o in zip(jax.tree.leaves(penalized), jax.tree.leaves(plain), jax.tree.leaves(state.importance)):
        np.testing.assert_allclose(u - g, 2.0 * 2.0 * o * 0.25, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["ewc", "synaptic_intelligence"])
def test_wrappers_accept_any_inner_rule(name):
    """EWC around feedback alignment: the inner rule's own state is kept and its updates are the base."""
    net = rulelab.mlp((3, 5, 4), "tanh")
    rule = rulelab.make_rule(name, net, inner="feedback_alignment")
    params = net.init(jax.random.key(0))
    state = rule.init(jax.random.key(1), params)
    fa = rulelab.make_rule("feedback_alignment", net)
    fa_state = fa.init(jax.random.key(1), params)
    batch = _batch(jax.random.key(2))
    np.testing.assert_array_equal(state.inner.feedback[0], fa_state.feedback[0])
    for a, b in zip(jax.tree.leaves(rule.update(params, state, batch, key=jax.random.key(3))[0]),
                    jax.tree.leaves(fa.update(params, fa_state, batch, key=jax.random.key(3))[0])):
        np.testing.assert_allclose(a, b, atol=1e-6)
