"""The neuromodulated TD rule: Sutton & Barto's random walk, exact trace algebra, and the pre·post identity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rulelab.harness.rl import RLTrainConfig, Trajectory, make_rl_train
from rulelab.nets.recurrent import linear_agent, lstm_agent
from rulelab.registry import make_rule
from rulelab.tasks.rl.random_walk import NUM_STATES, TRUE_VALUES, random_walk_task


def test_td_zero_and_td_lambda_converge_to_the_random_walk_true_values():
    # Sutton & Barto Example 6.2: v(A..E) = 1/6 ... 5/6 with γ = 1; λ is a traced hyperparameter, so TD(0) and
    # TD(0.8) run as one vmapped program
    task = random_walk_task(steps_per_segment=16)
    agent = linear_agent(NUM_STATES, 1)
    config = RLTrainConfig(num_updates=150, episodes_per_update=16, segment_length=4, optimizer="sgd", log_every=150)
    init, run = make_rl_train(task, agent, lambda a, **h: make_rule("neuromodulated_td", a, **h), config)

    def values(key, trace_decay):
        hparams = {"learning_rate": jnp.asarray(0.05), "discount": jnp.asarray(1.0), "trace_decay": trace_decay}
        state, _ = run(init(key, hparams), hparams, 1)
        return state.params["value"]["kernel"]

    keys = jax.random.split(jax.random.key(0), 4)
    estimates = jax.jit(jax.vmap(jax.vmap(values, (0, None)), (None, 0)))(keys, jnp.array([0.0, 0.8]))
    for trace_decay, estimate in zip((0.0, 0.8), estimates.mean(axis=1)):
        np.testing.assert_allclose(estimate, TRUE_VALUES, atol=0.05, err_msg=f"λ = {trace_decay}")


def manual_td_lambda(features, rewards, discounts, bootstrap, weights, gamma, lam):
    """Σ_t δ_t e_t for a linear critic, written out with a Python loop."""
    trace, total = np.zeros_like(weights), np.zeros_like(weights)
    values = features @ weights
    next_values = np.append(values[1:], bootstrap @ weights)
    for t in range(len(rewards)):
        trace = gamma * lam * trace + features[t]
        delta = rewards[t] + gamma * discounts[t] * next_values[t] - values[t]
        total += delta * trace
        trace *= discounts[t]
    return total


def test_segment_update_is_the_accumulated_td_lambda_sum():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(7, 3)).astype(np.float32)
    rewards = rng.normal(size=7).astype(np.float32)
    discounts = np.array([1, 1, 0, 1, 1, 1, 1], np.float32)  # an episode ends after step 2
    bootstrap = rng.normal(size=3).astype(np.float32)
    agent = linear_agent(3, 1)
    params = agent.init(jax.random.key(0))
    params["value"]["kernel"] = jnp.asarray(rng.normal(size=3), jnp.float32)
    rule = make_rule("neuromodulated_td", agent, discount=0.9, trace_decay=0.7)
    trajectory = Trajectory((), jnp.asarray(features), jnp.zeros(7, jnp.int32), jnp.asarray(rewards),
                            jnp.asarray(discounts), jnp.zeros(7, bool), jnp.asarray(bootstrap))
    updates, state, metrics = jax.jit(rule.update)(params, rule.init(jax.random.key(1), params), trajectory,
                                                   key=jax.random.key(2))
    expected = manual_td_lambda(features, rewards, discounts, bootstrap, np.asarray(params["value"]["kernel"]),
                                0.9, 0.7)
    np.testing.assert_allclose(-np.asarray(updates["value"]["kernel"]), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(updates["policy"]["kernel"]), 0.0)  # one action: ∂log π = 0


def test_readout_traces_are_pre_times_post_and_the_core_is_frozen():
    agent = lstm_agent(num_inputs=4, num_actions=3, hidden=5)
    params = agent.init(jax.random.key(0))
    rule = make_rule("neuromodulated_td", agent, discount=0.9, trace_decay=0.5, trainable="readouts")
    x = jax.random.normal(jax.random.key(1), (1, 4))
    trajectory = Trajectory(agent.initial_carry(), x, jnp.array([2]), jnp.array([1.0]), jnp.array([0.0]),
                            jnp.zeros(1, bool), jnp.zeros(4))
    updates, _, metrics = jax.jit(rule.update)(params, rule.init(jax.random.key(2), params), trajectory,
                                               key=jax.random.key(3))
    output, carry = agent.apply(params, agent.initial_carry(), x[0])
    h, delta = carry.hidden, metrics["td_error"][0]
    np.testing.assert_allclose(delta, 1.0 - output.value, rtol=1e-5)  # terminal step: δ = r − V
    post = jax.nn.one_hot(2, 3) - jax.nn.softmax(output.logits)
    np.testing.assert_allclose(updates["value"]["kernel"], -delta * h, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(updates["policy"]["kernel"], -delta * jnp.outer(h, post), rtol=1e-4, atol=1e-6)
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree.leaves(updates["core"]))


def test_zero_td_error_gives_no_update_whatever_the_traces():
    # the third factor gates plasticity: δ = 0 at every step leaves the weights alone
    agent = linear_agent(2, 1)
    params = agent.init(jax.random.key(0))  # V = 0 everywhere, so with r = 0 every δ is 0
    rule = make_rule("neuromodulated_td", agent, discount=0.9, trace_decay=0.9)
    trajectory = Trajectory((), jnp.ones((5, 2)), jnp.zeros(5, jnp.int32), jnp.zeros(5), jnp.ones(5),
                            jnp.zeros(5, bool), jnp.ones(2))
    updates, state, _ = jax.jit(rule.update)(params, rule.init(jax.random.key(1), params), trajectory,
                                             key=jax.random.key(2))
    assert all(float(jnp.max(jnp.abs(u))) == 0.0 for u in jax.tree.leaves(updates))
    np.testing.assert_allclose(state.value_trace["value"]["kernel"], sum(0.81 ** k for k in range(5)), rtol=1e-5)
