"""Burstprop and BurstCCN: the small-signal limit points the way backprop does, and the rules learn digits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rulelab
from rulelab.core import softmax_cross_entropy
from rulelab.rules.credit_assignment import chained_deltas, layer_updates, output_error
from rulelab.tasks.supervised import load_dataset

SMALL_TEACHING = 1e-3


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def problem(digits):
    net = rulelab.mlp((64, 128, 128, 10), "tanh")
    params = net.init(jax.random.key(0))
    batch = rulelab.Batch(jnp.asarray(digits.x_train[:64]), jnp.asarray(digits.y_train[:64]))
    return net, params, batch


def burst_update(name, net, params, batch, **hyperparameters):
    rule = rulelab.make_rule(name, net, **hyperparameters)
    state = rule.init(jax.random.key(1), params)
    updates, _, metrics = jax.jit(lambda p, b: rule.update(p, state, b, key=jax.random.key(2)))(params, batch)
    return updates, state, metrics


def angles_to(updates, reference):
    return np.array([float(rulelab.angle_degrees(u["kernel"], r["kernel"])) for u, r in zip(updates, reference)])


def backprop(net, params, batch):
    return jax.grad(lambda p: softmax_cross_entropy(net.apply(p, batch.x)[0], batch.y))(params)


def test_burstccn_with_symmetric_feedback_points_like_backprop(problem, record_property):
    net, params, batch = problem
    updates, _, _ = burst_update("burstccn", net, params, batch, feedback="symmetric", teaching_strength=SMALL_TEACHING)
    angles = angles_to(updates, backprop(net, params, batch))
    record_property("burstccn_angles_deg", angles.tolist())
    print(f"burstccn, symmetric feedback, τ={SMALL_TEACHING}: angles to backprop {np.round(angles, 3)}°")
    assert angles.max() < 1.0


def test_burstprop_with_symmetric_feedback_points_like_backprop(problem, record_property):
    """The reference pass leaves ū ≠ 0, so P'(ū) varies per unit: small only when the feedback is weak too."""
    net, params, batch = problem
    exact = backprop(net, params, batch)
    angles = {}
    for scale in (1.0, 0.1):
        updates, _, _ = burst_update("burstprop", net, params, batch, feedback="symmetric",
                                     teaching_strength=SMALL_TEACHING, feedback_scale=scale)
        angles[scale] = angles_to(updates, exact)
    record_property("burstprop_angles_deg", {str(k): v.tolist() for k, v in angles.items()})
    print(f"burstprop, symmetric feedback, τ={SMALL_TEACHING}: angles to backprop "
          f"{np.round(angles[1.0], 2)}° (feedback scale 1), {np.round(angles[0.1], 2)}° (scale 0.1)")
    assert angles[0.1].max() < 5.0
    assert angles[1.0].max() < 45.0
    assert angles[1.0][0] > angles[0.1][0]  # the reference-pass slope is what bends the bottom layer


def test_a_strong_teaching_signal_saturates_burst_probabilities(problem):
    net, params, batch = problem
    exact = backprop(net, params, batch)
    weak, _, _ = burst_update("burstccn", net, params, batch, feedback="symmetric", teaching_strength=SMALL_TEACHING)
    strong, _, _ = burst_update("burstccn", net, params, batch, feedback="symmetric", teaching_strength=1.0)
    assert angles_to(strong, exact)[-1] > 10.0 * max(angles_to(weak, exact)[-1], 0.1)


def test_burstccn_with_random_feedback_is_feedback_alignment_in_the_small_signal_limit(problem):
    net, params, batch = problem
    updates, state, _ = burst_update("burstccn", net, params, batch, teaching_strength=SMALL_TEACHING)
    logits, activity = net.apply(params, batch.x)
    deltas = chained_deltas(net, activity, output_error(logits, batch.y), state.feedback)
    alignment = layer_updates(activity, deltas)
    cosines = [float(rulelab.tree_cosine(u, a)) for u, a in zip(updates, alignment)]
    assert min(cosines) > 0.9999, cosines


def test_learns_digits(digits):
    """A small configuration: 64-64-10, 300 Adam steps of batch 32; both rules clear 90% test accuracy."""
    net = rulelab.mlp((64, 64, 10), "tanh")
    x, y = jnp.asarray(digits.x_train), jnp.asarray(digits.y_train)
    optimizer = optax.adam(3e-3)

    def train(name):
        rule = rulelab.make_rule(name, net)

        def step(carry, key):
            params, rule_state, opt_state = carry
            index = jax.random.randint(key, (32,), 0, x.shape[0])
            updates, rule_state, _ = rule.update(params, rule_state, rulelab.Batch(x[index], y[index]), key=key)
            steps, opt_state = optimizer.update(updates, opt_state, params)
            return (optax.apply_updates(params, steps), rule_state, opt_state), None

        params = net.init(jax.random.key(0))
        carry = (params, rule.init(jax.random.key(1), params), optimizer.init(params))
        (params, _, _), _ = jax.lax.scan(step, carry, jax.random.split(jax.random.key(2), 300))
        return rulelab.accuracy(net.apply(params, jnp.asarray(digits.x_test))[0], jnp.asarray(digits.y_test))

    for name in ("burstprop", "burstccn"):
        accuracy = float(jax.jit(lambda: train(name))())
        assert accuracy > 0.9, (name, accuracy)


def test_rejects_an_activation_without_a_rate_floor():
    with pytest.raises(ValueError, match="tanh, sigmoid, relu"):
        rulelab.make_rule("burstprop", rulelab.mlp((2, 3, 2), "linear"))


@pytest.mark.slow
def test_digits_reproduction(digits):
    """64-128-128-10 tanh, 3000 Adam steps of batch 32, 8 seeds: at least 93% test accuracy."""
    from rulelab.harness.compare import compare_rules

    _, summary = compare_rules(digits, ("burstprop", "burstccn"), num_seeds=8, progress=False)
    for rule in ("burstprop", "burstccn"):
        assert summary["rules"][rule]["test_accuracy_mean"] >= 0.93, summary
