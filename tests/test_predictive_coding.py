"""Predictive coding: the fixed-prediction identity with backprop, the small-nudge limit, inference and iPC."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.core import softmax_cross_entropy
from tests.conformance_problems import teacher_student_problem


@pytest.fixture(scope="module")
def problem():
    problem = teacher_student_problem()
    params = problem.init_params(jax.random.key(0))
    batch = problem.sample_batch(jax.random.key(2))
    return problem.net, params, batch


def backprop_gradient(net, params, batch):
    return jax.grad(lambda p: softmax_cross_entropy(net.apply(p, batch.x)[0], batch.y))(params)


def pc_update(net, params, batch, name="predictive_coding", **hyperparameters):
    rule = rulelab.make_rule(name, net, **hyperparameters)
    updates, _, metrics = rule.update(params, rule.init(jax.random.key(1), params), batch, key=jax.random.key(3))
    return updates, metrics


def traced_pc_update(net, params, batch, name="predictive_coding", **static):
    """``f(**numbers) -> (updates, metrics)`` compiled once: the numeric hyperparameters are traced values."""
    return jax.jit(lambda **numbers: pc_update(net, params, batch, name, **static, **numbers))


def relative_errors(updates, reference):
    return np.array([
        float(jnp.linalg.norm(u["kernel"] - r["kernel"]) / jnp.linalg.norm(r["kernel"]))
        for u, r in zip(updates, reference)
    ])


def test_fixed_prediction_equals_backprop_once_the_error_reaches_every_layer():
    net = rulelab.mlp((8, 16, 12, 16, 4), "tanh")  # three hidden layers: errors need three steps to arrive
    params = net.init(jax.random.key(5))
    batch = teacher_student_problem().sample_batch(jax.random.key(6))
    update = traced_pc_update(net, params, batch, "predictive_coding_fixed_prediction")
    exact = backprop_gradient(net, params, batch)
    for u, g in zip(jax.tree.leaves(update(inference_steps=3)[0]), jax.tree.leaves(exact)):
        np.testing.assert_allclose(u, g, rtol=1e-5, atol=1e-7)
    # One step fewer leaves the bottom layer without an error: the identity is not automatic.
    early, _ = update(inference_steps=2)
    assert float(jnp.max(jnp.abs(early[0]["kernel"]))) == 0.0 < float(jnp.max(jnp.abs(early[1]["kernel"])))


def test_fixed_prediction_with_small_rate_converges_to_backprop(problem):
    net, params, batch = problem
    updates, _ = jax.jit(lambda p: pc_update(net, p, batch, variant="fixed_prediction", inference_steps=80,
                                             inference_rate=0.3))(params)
    assert relative_errors(updates, backprop_gradient(net, params, batch)).max() < 1e-4


def test_small_nudge_limit_approaches_backprop(problem):
    """(1/β) ∂F/∂θ at the inference fixed point → ∂L/∂θ as β → 0 (per-layer cosine close to 1)."""
    net, params, batch = problem
    exact = backprop_gradient(net, params, batch)
    update = traced_pc_update(net, params, batch, inference_steps=300)
    errors = {}
    for nudge in (1.0, 0.1, 0.01):
        updates, metrics = update(inference_rate=0.2, output_nudge=nudge)
        assert float(metrics["inference_residual"]) < 1e-2  # inference converged
        errors[nudge] = relative_errors(updates, exact)
        cosines = [float(rulelab.tree_cosine(u["kernel"], g["kernel"])) for u, g in zip(updates, exact)]
        if nudge == 0.01:
            assert min(cosines) > 0.9999, cosines
    assert errors[1.0].min() > 0.1  # a strong nudge really differs from backprop ...
    assert np.all(errors[0.1] < errors[1.0]) and np.all(errors[0.01] < errors[0.1])
    assert np.all(errors[0.01] < 0.3 * errors[0.1])  # ... and the gap closes linearly in β


def test_inference_lowers_the_energy_and_reaches_a_fixed_point(problem):
    net, params, batch = problem
    update = traced_pc_update(net, params, batch, output_nudge=1.0)
    _, short = update(inference_steps=2, inference_rate=0.1)
    _, long = update(inference_steps=200, inference_rate=0.2)
    assert float(long["energy_final"]) < float(short["energy_final"]) < float(short["energy_initial"])
    np.testing.assert_allclose(short["energy_initial"], short["loss"], rtol=1e-6)  # β = 1, all hidden ε = 0
    assert float(long["inference_residual"]) < 1e-3 < float(short["inference_residual"])


def test_inference_step_is_capped_when_the_weights_grow(problem):
    """A requested γ = 0.5 is unstable on weights 4× larger; the curvature cap 1/(1 + σ)² keeps inference descending."""
    net, params, batch = problem
    big = jax.tree.map(lambda w: 4.0 * w, params)

    @jax.jit
    def run(params, steps):
        rule = rulelab.make_rule("predictive_coding", net, inference_steps=steps, inference_rate=0.5)
        state = rule.init(jax.random.key(1), params)
        for _ in range(20):  # warm up the power iteration, as training steps do
            _, state, metrics = rule.update(params, state, batch, key=jax.random.key(0))
        return metrics

    small, first, last = run(params, 400), run(big, 1), run(big, 400)
    assert float(last["inference_rate"]) < 0.3 * float(small["inference_rate"]) < 0.15
    assert np.isfinite(float(last["energy_final"]))
    assert float(last["energy_final"]) < float(last["energy_initial"])
    assert float(last["inference_residual"]) < 0.25 * float(first["inference_residual"])


def test_incremental_without_weight_steps_averages_standard_updates(problem):
    """With η_w = 0, iPC's update is the mean of the standard PC updates after 1, 2, ..., T inference steps."""
    net, params, batch = problem
    steps = 4
    incremental, _ = pc_update(net, params, batch, variant="incremental", inference_steps=steps, weight_rate=0.0)
    standard = traced_pc_update(net, params, batch)
    mean = jax.tree.map(lambda *u: sum(u) / steps, *(standard(inference_steps=t)[0] for t in range(1, steps + 1)))
    for a, b in zip(jax.tree.leaves(incremental), jax.tree.leaves(mean)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_incremental_weight_steps_lower_the_energy(problem):
    net, params, batch = problem
    update = traced_pc_update(net, params, batch, variant="incremental")
    _, frozen = update(weight_rate=0.0)
    _, moving = update(weight_rate=0.05)
    assert float(moving["energy_final"]) < float(frozen["energy_final"])


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="standard, fixed_prediction, incremental"):
        rulelab.make_rule("predictive_coding", rulelab.mlp((2, 3, 2)), variant="nope")


@pytest.mark.slow
def test_digits_reproduction_against_backprop():
    """The issue's numbers: 64-128-128-10 tanh, 3000 Adam steps of batch 32, 8 seeds (``rulelab compare``)."""
    from rulelab.harness.compare import compare_rules
    from rulelab.tasks.supervised import load_dataset

    rules = ("backprop", "predictive_coding", "predictive_coding_fixed_prediction")
    _, summary = compare_rules(load_dataset("digits"), rules, num_seeds=8, progress=False)
    accuracy = {rule: summary["rules"][rule]["test_accuracy_mean"] for rule in rules}
    assert accuracy["predictive_coding"] > accuracy["backprop"] - 0.01, accuracy
    assert abs(accuracy["predictive_coding_fixed_prediction"] - accuracy["backprop"]) < 0.003, accuracy
