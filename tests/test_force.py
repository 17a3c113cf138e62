"""FORCE / RLS identities, the LMS and BPTT readout gradients, and FORCE generating a sine on its own."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.harness.reservoir import ReservoirConfig, product_grid, run_reservoir_grid
from rulelab.nets.reservoir import reservoir
from rulelab.rules.force import ReservoirBatch, closed_loop_loss

SIZE, OUTPUTS = 12, 2


def random_data(key, steps):
    rates_key, target_key, readout_key = jax.random.split(key, 3)
    # correlated rates, as a reservoir's are: a random mixing of fewer latent signals plus noise
    latent = jax.random.normal(rates_key, (steps, 4)) @ jax.random.normal(readout_key, (4, SIZE))
    rates = jnp.tanh(0.5 * latent + 0.1 * jax.random.normal(target_key, (steps, SIZE)))
    targets = jnp.sin(jnp.arange(steps)[:, None] * jnp.array([0.1, 0.23]))
    return rates, targets


@partial(jax.jit, static_argnames=("net", "segment"))
def fit_force(net, params, rates, targets, alpha, *, segment):
    """Apply FORCE segment by segment with SGD at learning rate 1; return final params and state."""
    rule = rulelab.make_rule("force", net, alpha=alpha)
    state = rule.init(jax.random.key(0), params)

    def body(carry, batch_data):
        params, state = carry
        batch = ReservoirBatch(jnp.zeros(SIZE), *batch_data)
        updates, state, _ = rule.update(params, state, batch, key=jax.random.key(0))
        return (jax.tree.map(lambda p, u: p - u, params, updates), state), None

    shaped = (rates.reshape(-1, segment, SIZE), targets.reshape(-1, segment, OUTPUTS))
    (params, state), _ = jax.lax.scan(body, (params, state), shaped)
    return params, state


@pytest.fixture(scope="module")
def net_and_params():
    net = reservoir(SIZE, OUTPUTS)
    params = net.init(jax.random.key(3))
    start_readout = 0.3 * jax.random.normal(jax.random.key(4), (SIZE, OUTPUTS))
    return net, params._replace(readout=start_readout)


@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_force_equals_regularised_least_squares(net_and_params, alpha):
    # Known RLS result: after any data, w = argmin Σ|r_t w − f_t|² + α|w − w₀|², P = (α I + Rᵀ R)⁻¹.
    net, params = net_and_params
    rates, targets = random_data(jax.random.key(5), 60)
    final, state = fit_force(net, params, rates, targets, alpha, segment=1)
    regularised = alpha * np.eye(SIZE) + np.asarray(rates, np.float64).T @ np.asarray(rates, np.float64)
    exact_p = np.linalg.inv(regularised)
    exact_w = exact_p @ (alpha * np.asarray(params.readout, np.float64) + np.asarray(rates.T @ targets, np.float64))
    np.testing.assert_allclose(state.inverse_correlation, exact_p, rtol=2e-3, atol=2e-5 / alpha)
    np.testing.assert_allclose(final.readout, exact_w, rtol=2e-3, atol=2e-4)
    # only the readout is trained
    np.testing.assert_array_equal(final.recurrent, params.recurrent)
    np.testing.assert_array_equal(final.feedback, params.feedback)


def test_block_update_equals_rank_one_sequence(net_and_params):
    net, params = net_and_params
    rates, targets = random_data(jax.random.key(6), 40)
    one_by_one, state_one = fit_force(net, params, rates, targets, 1.0, segment=1)
    in_blocks, state_blocks = fit_force(net, params, rates, targets, 1.0, segment=8)
    np.testing.assert_allclose(in_blocks.readout, one_by_one.readout, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(state_blocks.inverse_correlation, state_one.inverse_correlation, rtol=1e-3, atol=1e-5)


def test_inverse_correlation_stays_symmetric_positive_definite_and_exact(net_and_params):
    net, params = net_and_params
    rates, targets = random_data(jax.random.key(7), 3000)
    _, state = fit_force(net, params, rates, targets, 1.0, segment=1)
    p = np.asarray(state.inverse_correlation, np.float64)
    np.testing.assert_allclose(p, p.T, rtol=0, atol=1e-7)
    assert np.linalg.eigvalsh(p).min() > 0
    exact = np.linalg.inv(np.eye(SIZE) + np.asarray(rates, np.float64).T @ np.asarray(rates, np.float64))
    np.testing.assert_allclose(p, exact, rtol=0.02, atol=1e-3 * np.abs(exact).max())


def test_force_error_shrinks_after_update(net_and_params):
    # Sussillo & Abbott: |e⁺| < |e⁻|, the error after an RLS step is e⁻ / (1 + r P r ᵀ).
    net, params = net_and_params
    rates, targets = random_data(jax.random.key(8), 1)
    rule = rulelab.make_rule("force", net)
    batch = ReservoirBatch(jnp.zeros(SIZE), rates, targets)
    state = rule.init(jax.random.key(0), params)
    updates, _, _ = jax.jit(partial(rule.update, key=jax.random.key(0)))(params, state, batch)
    before = rates @ params.readout - targets
    after = rates @ (params.readout - updates.readout) - targets
    shrink = 1.0 + rates[0] @ state.inverse_correlation @ rates[0]
    np.testing.assert_allclose(after, before / shrink, rtol=1e-4, atol=1e-6)


def test_lms_update_is_the_mean_squared_error_gradient(net_and_params):
    net, params = net_and_params
    rates, targets = random_data(jax.random.key(9), 10)
    batch = ReservoirBatch(jnp.zeros(SIZE), rates, targets)
    rule = rulelab.make_rule("lms_readout", net)
    updates, _, _ = jax.jit(partial(rule.update, key=jax.random.key(0)))(params, rule.init(None, params), batch)
    exact = jax.grad(lambda w: 0.5 * jnp.mean(jnp.sum((rates @ w - targets) ** 2, axis=1)))(params.readout)
    np.testing.assert_allclose(updates.readout, exact, rtol=1e-5, atol=1e-7)


def test_bptt_without_feedback_reduces_to_the_teacher_forced_gradient(net_and_params):
    # With the loop cut, the output no longer drives the network: BPTT's readout gradient is the LMS one,
    # scaled by the loss convention (mean over outputs of e² versus ½ sum over outputs).
    net, params = net_and_params
    params = params._replace(feedback=jnp.zeros_like(params.feedback))
    start = net.initial_state(jax.random.key(10))
    _, rates, _ = net.run(params, start, 15)
    targets = jnp.sin(jnp.arange(15)[:, None] * jnp.array([0.2, 0.5]))
    batch = ReservoirBatch(start, rates, targets)
    bptt = rulelab.make_rule("reservoir_bptt", net)
    lms = rulelab.make_rule("lms_readout", net)
    bptt_updates, _, metrics = jax.jit(partial(bptt.update, key=jax.random.key(0)))(params, bptt.init(None, params),
                                                                                   batch)
    lms_updates, _, _ = jax.jit(partial(lms.update, key=jax.random.key(0)))(params, lms.init(None, params), batch)
    np.testing.assert_allclose(bptt_updates.readout, 2.0 / OUTPUTS * lms_updates.readout, rtol=1e-4, atol=1e-6)
    assert not np.any(bptt_updates.recurrent) and not np.any(bptt_updates.feedback)
    np.testing.assert_allclose(metrics["loss"], closed_loop_loss(net, params, batch), rtol=1e-6)


def test_bptt_can_train_the_recurrent_weights(net_and_params):
    net, params = net_and_params
    start = net.initial_state(jax.random.key(11))
    batch = ReservoirBatch(start, jnp.zeros((10, SIZE)), jnp.ones((10, OUTPUTS)))
    rule = rulelab.make_rule("reservoir_bptt", net, train_recurrent=True)
    updates, _, _ = jax.jit(partial(rule.update, key=jax.random.key(0)))(params, rule.init(None, params), batch)
    exact = jax.jit(jax.grad(lambda p: closed_loop_loss(net, p, batch)))(params)
    for u, g in zip(updates, exact):
        np.testing.assert_allclose(u, g, rtol=1e-5, atol=1e-7)
    assert np.abs(updates.recurrent).max() > 0


def test_force_keeps_generating_a_sine_after_learning_stops():
    # Small version of Sussillo & Abbott's Fig. 2: with the readout fed back, FORCE turns a chaotic reservoir
    # (g = 1.5) into a sine generator that continues alone; without feedback the readout cannot.
    config = ReservoirConfig(rule="force", target="sine", size=120, train_time=32.0, test_time=8.0)
    result = run_reservoir_grid(config, product_grid(feedback_scale=[1.0, 0.0], period=[4.0]), num_seeds=2)
    with_feedback, without_feedback = result.metrics["free_running_error"]
    assert np.all(with_feedback < 0.1), with_feedback
    assert np.all(without_feedback > 0.8), without_feedback
    assert np.all(result.metrics["train_error"][0] < 0.1)
