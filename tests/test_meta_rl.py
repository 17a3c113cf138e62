"""Meta-RL: A2C pieces, Backpropamine's plasticity, a small meta-training run, and the ``meta-rl`` command."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rulelab.cli import main
from rulelab.harness.a2c import a2c, discounted_returns
from rulelab.harness.meta_rl import LEARNERS, cumulative_regret, evaluate_learner, evaluate_references, train_learner
from rulelab.harness.rl import Trajectory, mean_update
from rulelab.rules.backpropamine import PlasticCarry, backpropamine_agent, plastic_step
from rulelab.tasks.rl.bandits import dependent_bandit_task


def test_discounted_returns_match_the_closed_form():
    rewards = jnp.array([1.0, 0.0, 2.0, 1.0])
    discounts = jnp.array([1.0, 1.0, 0.0, 1.0])  # the episode ends after step 2
    returns = discounted_returns(rewards, discounts, jnp.asarray(5.0), 0.5)
    np.testing.assert_allclose(returns, [1 + 0.5 * 0 + 0.25 * 2, 0 + 0.5 * 2, 2.0, 1 + 0.5 * 5], rtol=1e-6)


@pytest.mark.parametrize("make_agent", [LEARNERS["meta_a2c"].make_agent, LEARNERS["backpropamine"].make_agent])
def test_a2c_batch_update_and_chunked_updates_are_the_mean_of_per_episode_updates(make_agent):
    task = dependent_bandit_task("easy", num_trials=6)
    agent = make_agent(task)
    params = agent.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), 4)
    batch, steps = 3, 6
    trajectories = Trajectory(
        carry=jax.vmap(lambda _: agent.initial_carry())(jnp.arange(batch)),
        inputs=jax.random.normal(keys[0], (batch, steps, task.num_inputs)),
        actions=jax.random.randint(keys[1], (batch, steps), 0, task.num_actions),
        rewards=jax.random.bernoulli(keys[2], 0.5, (batch, steps)).astype(jnp.float32),
        discounts=jnp.ones((batch, steps)).at[1, 3].set(0.0),
        resets=jnp.zeros((batch, steps), bool).at[1, 4].set(True),
        bootstrap_inputs=jax.random.normal(keys[3], (batch, task.num_inputs)))
    rule = a2c(agent, entropy_coef=0.1)
    states = jax.vmap(lambda k: rule.init(k, params))(keys[:batch])
    per_episode, _, _ = jax.vmap(lambda s, t: rule.update(params, s, t, key=None))(states, trajectories)
    batched, _, metrics = rule.batch_update(params, states, trajectories, keys=keys[:batch])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(jnp.mean(a, axis=0), b, rtol=1e-4, atol=1e-6),
                 per_episode, batched)
    assert metrics["loss"].shape == (batch,)
    chunked, _, chunk_metrics = mean_update(rule, params, states, trajectories, keys[:batch], chunk=1)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), chunked, batched)
    np.testing.assert_allclose(chunk_metrics["loss"], metrics["loss"], rtol=1e-5)
    assert float(jnp.max(jnp.abs(batched["core"]["input_kernel"]))) > 0.0


def test_backpropamine_hebbian_trace_is_modulated_pre_times_post():
    agent = backpropamine_agent(num_inputs=3, num_actions=2, hidden=4, neuromodulation="simple")
    core = agent.init(jax.random.key(0))["core"]
    previous = jax.random.uniform(jax.random.key(1), (4,), minval=-0.5, maxval=0.5)
    carry = PlasticCarry(previous, jnp.zeros((4, 4)), jnp.zeros((4, 4)))
    x = jnp.array([1.0, -1.0, 0.5])
    new = plastic_step(core, carry, x, "simple")
    modulation = jnp.tanh(new.hidden @ core["modulator"]["kernel"] + core["modulator"]["bias"])
    np.testing.assert_allclose(new.hebb, modulation * jnp.outer(previous, new.hidden), rtol=1e-5, atol=1e-7)
    # with a Hebbian trace present the effective recurrent weight is W + α ⊙ Hebb
    expected = jnp.tanh(x @ core["input_kernel"] + new.hidden @ (core["recurrent_kernel"] + core["plasticity"] *
                                                                 new.hebb) + core["bias"])
    np.testing.assert_allclose(plastic_step(core, new, x, "simple").hidden, expected, rtol=1e-5, atol=1e-6)


def test_backpropamine_without_plasticity_has_no_memory_in_its_weights():
    agent = backpropamine_agent(num_inputs=3, num_actions=2, hidden=4, neuromodulation="retroactive")
    params = agent.init(jax.random.key(0))
    params["core"]["plasticity"] = jnp.zeros((4, 4))
    xs = jax.random.normal(jax.random.key(1), (6, 3))
    carry = agent.initial_carry()
    for x in xs:
        output, carry = agent.apply(params, carry, x)
    fresh = carry._replace(hebb=jnp.zeros((4, 4)), eligibility=jnp.zeros((4, 4)))
    np.testing.assert_allclose(agent.apply(params, carry, xs[0])[0].logits, agent.apply(params, fresh, xs[0])[0].logits,
                               rtol=1e-6)
    assert float(jnp.max(jnp.abs(carry.hebb))) > 0.0  # the trace still grew


def test_a_small_meta_training_run_beats_random_on_new_bandits():
    task = dependent_bandit_task("easy", num_trials=20)
    learner = dataclasses.replace(LEARNERS["meta_a2c"], hparams={**LEARNERS["meta_a2c"].hparams,
                                                                  "learning_rate": 3e-3})
    agent, params, curves = train_learner(task, learner, num_seeds=1, train_episodes=3200, episodes_per_update=32,
                                          num_logs=2)
    key = jax.random.key(123)  # evaluation episodes unseen in training
    learned = cumulative_regret(evaluate_learner(task, agent, params, key, 500))[0, -1]
    chance = cumulative_regret(evaluate_references(task, ("random",), key, 500))[0, -1]
    assert chance == pytest.approx(20 * 0.4, rel=0.1)
    assert learned < 0.5 * chance, (learned, chance)


def test_cli_end_to_end_on_the_two_step_task(tmp_path):
    assert main(["meta-rl", "--task", "two-step", "--learners", "neuromodulated_td_readout", "--seeds", "2",
                 "--train-episodes", "64", "--eval-episodes", "16", "--out", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"task", "learners", "reference"} and summary["task"] == "two-step"
    assert set(summary["reference"]) == {"random", "ucb", "thompson"}
    for row in summary["learners"].values():
        assert set(row) == {"cumulative_regret_mean", "cumulative_regret_std", "seeds"} and row["seeds"] == 2
        assert np.isfinite(row["cumulative_regret_mean"])
    for name in ("results.parquet", "training.parquet", "cumulative_regret.png", "stay_probabilities.png"):
        assert (tmp_path / name).exists(), name


@pytest.mark.parametrize("argv, fragment", [
    (["meta-rl", "--task", "bandit-impossible"], "valid: bandit-independent"),
    (["meta-rl", "--learners", "meta_a2c,oracle"], "valid: meta_a2c"),
    (["meta-rl", "--seeds", "0"], "positive integer"),
])
def test_cli_rejects_bad_input_in_one_line(argv, fragment, capsys):
    with pytest.raises(SystemExit) if "--seeds" in argv else _no_exit():
        code = main(argv)
        assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and fragment in error[0]


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.slow
def test_meta_learner_approaches_thompson_sampling_on_independent_bandits():
    from rulelab.tasks.rl import make_meta_task

    task = make_meta_task("bandit-independent")
    agent, params, _ = train_learner(task, LEARNERS["meta_a2c"], num_seeds=2, train_episodes=100_000)
    key = jax.random.key(7)
    learned = cumulative_regret(evaluate_learner(task, agent, params, key, 1000))[:, -1]
    thompson, ucb = cumulative_regret(evaluate_references(task, ("thompson", "ucb"), key, 1000))[:, -1]
    assert np.all(learned < ucb) and np.mean(learned) < 1.5 * thompson, (learned, thompson, ucb)
