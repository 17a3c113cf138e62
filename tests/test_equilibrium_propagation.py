"""Equilibrium propagation: the estimate approaches the gradient of the loss at the free fixed point as β shrinks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.core import softmax_cross_entropy
from rulelab.rules import equilibrium_propagation as eqprop
from tests.conformance_problems import teacher_student_problem

SWEEPS = 100  # enough for the teacher–student net to reach its fixed points to float precision
FEEDBACK_GAIN = 0.5


@pytest.fixture(scope="module")
def problem():
    problem = teacher_student_problem()
    params = problem.init_params(jax.random.key(0))
    batch = problem.sample_batch(jax.random.key(2))
    return problem.net, params, batch


@pytest.fixture(scope="module")
def exact(problem):
    return free_phase_gradient(*problem, FEEDBACK_GAIN)


def free_phase_gradient(net, params, batch, feedback_gain):
    """∂CE(s⁰(θ))/∂θ by differentiating through a converged free relaxation."""

    def free_loss(p):
        start = eqprop.Equilibrium(net.apply(p, batch.x)[1].preactivations[:-1])
        free = eqprop.relax(net, p, start, batch, nudge=0.0, feedback_gain=feedback_gain, rate=1.0, steps=SWEEPS)
        return softmax_cross_entropy(eqprop._readout(p, eqprop._rates(net, free, batch.x)), batch.y)

    return jax.jit(jax.grad(free_loss))(params)


def eqprop_update(net, params, batch, **hyperparameters):
    rule = rulelab.make_rule("equilibrium_propagation", net, free_steps=SWEEPS, nudged_steps=SWEEPS, **hyperparameters)
    updates, _, metrics = rule.update(params, rule.init(None, params), batch, key=jax.random.key(0))
    return updates, metrics


def traced_eqprop_update(net, params, batch, **static):
    """``f(**numbers) -> (updates, metrics)`` compiled once: the numeric hyperparameters are traced values."""
    return jax.jit(lambda **numbers: eqprop_update(net, params, batch, **static, **numbers))


def hidden_errors(updates, reference):
    """Relative error of every hidden kernel (the readout's update is exact by construction)."""
    return np.array([
        float(jnp.linalg.norm(u["kernel"] - r["kernel"]) / jnp.linalg.norm(r["kernel"]))
        for u, r in zip(updates[:-1], reference[:-1])
    ])


def estimate_errors(problem, exact, nudging, nudges):
    net, params, batch = problem
    update = traced_eqprop_update(net, params, batch, nudging=nudging)
    errors = []
    for nudge in nudges:
        updates, metrics = update(nudge=nudge, feedback_gain=FEEDBACK_GAIN)
        assert float(metrics["free_phase_residual"]) < 1e-5
        np.testing.assert_allclose(updates[-1]["kernel"], exact[-1]["kernel"], rtol=1e-4, atol=1e-6)
        errors.append(hidden_errors(updates, exact))
    return np.array(errors)


def test_symmetric_estimate_approaches_the_free_phase_gradient(problem, exact):
    errors = estimate_errors(problem, exact, "symmetric", (0.3, 0.1, 0.03))
    assert errors[0].min() > 5e-3  # a finite nudge is biased ...
    assert np.all(errors[-1] < 1e-3)  # ... and the bias vanishes
    assert np.all(errors[0] / errors[1] > 5.0)  # second order: a 3× smaller β cuts it about 9×


def test_one_sided_estimate_has_a_first_order_bias(problem, exact):
    errors = estimate_errors(problem, exact, "positive", (0.1, 0.03))
    ratio = errors[0] / errors[1]
    assert np.all((ratio > 2.0) & (ratio < 5.0)), ratio  # first order: about 3.3×
    assert np.all(errors[1] < 0.03)


def test_with_one_hidden_layer_it_equals_backprop_as_beta_shrinks():
    """Without hidden–hidden couplings the free fixed point is the feed-forward pass, so EqProp → backprop."""
    net = rulelab.mlp((8, 24, 4), "tanh")
    params = net.init(jax.random.key(4))
    batch = teacher_student_problem().sample_batch(jax.random.key(2))
    updates, metrics = jax.jit(lambda p: eqprop_update(net, p, batch, nudge=0.01))(params)
    exact = jax.grad(lambda p: softmax_cross_entropy(net.apply(p, batch.x)[0], batch.y))(params)
    np.testing.assert_allclose(metrics["free_phase_loss"], metrics["loss"], rtol=1e-6)
    for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(exact)):
        np.testing.assert_allclose(u, g, rtol=2e-3, atol=1e-5)


def test_feedback_gain_moves_the_free_phase_away_from_the_feedforward_pass(problem):
    net, params, batch = problem
    update = traced_eqprop_update(net, params, batch)
    gaps = []
    for gain in (0.01, 0.5):
        _, metrics = update(feedback_gain=gain)
        gaps.append(abs(float(metrics["free_phase_loss"] - metrics["loss"])))
    assert gaps[0] < 1e-3 < gaps[1]


def test_rejects_non_invertible_activation():
    with pytest.raises(ValueError, match="tanh, sigmoid, linear"):
        rulelab.make_rule("equilibrium_propagation", rulelab.mlp((2, 3, 2), "relu"))


@pytest.mark.slow
def test_digits_reproduction():
    """64-128-128-10 tanh, 3000 Adam steps of batch 32, 8 seeds: at least 93% test accuracy."""
    from rulelab.harness.compare import compare_rules
    from rulelab.tasks.supervised import load_dataset

    _, summary = compare_rules(load_dataset("digits"), ("equilibrium_propagation",), num_seeds=8, progress=False)
    assert summary["rules"]["equilibrium_propagation"]["test_accuracy_mean"] >= 0.93, summary
