"""Identities and known results for backprop and the feedback-alignment family."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.rules.credit_assignment import transposed_kernels
from rulelab.rules.feedback_alignment import FeedbackState, SignSymmetryState


def problem(sizes=(6, 9, 7, 4), activation="tanh"):
    net = rulelab.mlp(sizes, activation)
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (16, sizes[0]))
    y = jax.random.randint(jax.random.key(2), (16,), 0, sizes[-1])
    return net, params, rulelab.Batch(x, y)


def grads(net, params, batch):
    return jax.grad(lambda p: rulelab.softmax_cross_entropy(net.apply(p, batch.x)[0], batch.y))(params)


def assert_trees_close(a, b, atol=1e-6):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(u, v, atol=atol, rtol=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_backprop_is_jax_grad(activation):
    net, params, batch = problem(activation=activation)
    rule = rulelab.make_rule("backprop", net)
    updates, _, metrics = rule.update(params, rule.init(jax.random.key(0), params), batch, key=jax.random.key(0))
    assert_trees_close(updates, grads(net, params, batch), atol=0)
    np.testing.assert_allclose(metrics["loss"], rulelab.softmax_cross_entropy(net.apply(params, batch.x)[0], batch.y))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_feedback_alignment_with_transposed_weights_is_backprop(activation):
    net, params, batch = problem(activation=activation)
    rule = rulelab.make_rule("feedback_alignment", net)
    updates, _, _ = rule.update(params, FeedbackState(transposed_kernels(params)), batch, key=jax.random.key(0))
    assert_trees_close(updates, grads(net, params, batch))


def test_feedback_alignment_with_random_feedback_differs_from_backprop():
    net, params, batch = problem()
    rule = rulelab.make_rule("feedback_alignment", net)
    updates, _, _ = rule.update(params, rule.init(jax.random.key(5), params), batch, key=jax.random.key(0))
    exact = grads(net, params, batch)
    # the output layer's error is exact for every rule of the family; hidden layers are not
    assert_trees_close(updates[-1], exact[-1])
    assert float(rulelab.angle_degrees(updates[0]["kernel"], exact[0]["kernel"])) > 20.0


def test_feedback_state_shapes_follow_the_contract():
    net, params, _ = problem()
    state = rulelab.make_rule("feedback_alignment", net).init(jax.random.key(0), params)
    assert [b.shape for b in state.feedback] == [p["kernel"].T.shape for p in params[1:]]


def test_direct_feedback_alignment_one_hidden_layer_with_output_weights_is_backprop():
    net, params, batch = problem(sizes=(6, 9, 4))
    rule = rulelab.make_rule("direct_feedback_alignment", net)
    updates, _, _ = rule.update(params, FeedbackState((params[1]["kernel"].T,)), batch, key=jax.random.key(0))
    assert_trees_close(updates, grads(net, params, batch))


def test_sign_symmetry_with_true_magnitudes_is_backprop():
    net, params, batch = problem()
    rule = rulelab.make_rule("sign_symmetry", net, variant="random_magnitude")
    magnitudes = SignSymmetryState(tuple(jnp.abs(k) for k in transposed_kernels(params)))
    updates, _, _ = rule.update(params, magnitudes, batch, key=jax.random.key(0))
    assert_trees_close(updates, grads(net, params, batch))


def test_sign_symmetry_feedback_is_sign_concordant():
    net, params, batch = problem()
    rule = rulelab.make_rule("sign_symmetry", net, variant="uniform")
    updates, _, _ = rule.update(params, rule.init(jax.random.key(0), params), batch, key=jax.random.key(0))
    # sign-concordant feedback keeps hidden updates within 90° of backprop's on a fresh network
    exact = grads(net, params, batch)
    assert float(rulelab.angle_degrees(updates[0]["kernel"], exact[0]["kernel"])) < 90.0


def test_sign_symmetry_rejects_unknown_variant():
    net, _, _ = problem()
    with pytest.raises(ValueError, match="valid: uniform, random_magnitude"):
        rulelab.make_rule("sign_symmetry", net, variant="nope")


def test_kolen_pollack_shrinks_forward_feedback_distance_geometrically():
    net, params, batch = problem()
    rate, decay = 0.05, 0.1
    rule = rulelab.make_rule("kolen_pollack", net, feedback_learning_rate=rate, weight_decay=decay)
    state = rule.init(jax.random.key(3), params)

    def distance(params, state):
        return float(jnp.sqrt(sum(jnp.sum((p["kernel"] - b.T) ** 2) for p, b in zip(params[1:], state.feedback))))

    distances = [distance(params, state)]
    for step in range(20):
        batch_step = rulelab.Batch(jax.random.normal(jax.random.key(10 + step), batch.x.shape), batch.y)
        updates, state, _ = rule.update(params, state, batch_step, key=jax.random.key(0))
        params = jax.tree.map(lambda p, u: p - rate * u, params, updates)  # SGD at the feedback learning rate
        distances.append(distance(params, state))
    ratios = np.array(distances[1:]) / np.array(distances[:-1])
    np.testing.assert_allclose(ratios, 1.0 - rate * decay, rtol=1e-4)


def test_make_rule_unknown_names_list_the_choices():
    net, _, _ = problem()
    with pytest.raises(ValueError, match="available rules: .*backprop"):
        rulelab.make_rule("no_such_rule", net)
    with pytest.raises(TypeError, match="valid: feedback_scale"):
        rulelab.make_rule("feedback_alignment", net, feedback_sacle=2.0)
