"""Bandit, two-step and Harlow tasks, the reference policies, and gymnax environments run unchanged."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rulelab.harness.bandit_policies import reference_policy
from rulelab.harness.meta_rl import evaluate_references, stay_probabilities
from rulelab.harness.rl import agent_policy, evaluate_policy
from rulelab.nets.recurrent import lstm_agent
from rulelab.tasks.rl import MetaTask, fixed_params, make_meta_task
from rulelab.tasks.rl.bandits import DEPENDENT_ARM_PROBABILITIES, dependent_arms
from rulelab.tasks.rl.two_step import TRIALS_PER_EPISODE as TWO_STEP_TRIALS


def episode_regrets(task, name, num_episodes, seed=0):
    records = jax.jit(lambda k: evaluate_policy(task, reference_policy(name, task.num_actions), k, num_episodes))(
        jax.random.key(seed))
    return np.asarray(records.info["regret"]).sum(axis=1)


def test_reference_regrets_on_independent_bandits_match_known_numbers():
    # Wang et al. (2016) setting, 100 trials: random ≈ 16.7, UCB1 ≈ 5.6, Thompson ≈ 2.8
    task, names, known = make_meta_task("bandit-independent"), ("random", "ucb", "thompson"), (16.7, 5.6, 2.8)
    regrets = np.asarray(evaluate_references(task, names, jax.random.key(0), 400).info["regret"]).sum(axis=2)
    for name, value, per_episode in zip(names, known, regrets):
        standard_error = per_episode.std() / np.sqrt(len(per_episode))
        assert abs(per_episode.mean() - value) < 4 * standard_error + 0.15, (name, per_episode.mean(), standard_error)


def test_random_regret_on_dependent_bandits_is_exact_in_expectation():
    # regret per trial is |p1 - p2| / 2 on average: 100 * (1 - 2q) / 2 for p1 ∈ {q, 1 - q}
    q = DEPENDENT_ARM_PROBABILITIES["easy"]
    regrets = episode_regrets(make_meta_task("bandit-easy"), "random", 300)
    assert abs(regrets.mean() - 100 * (1 - 2 * q) / 2) < 4 * regrets.std() / np.sqrt(len(regrets))


def test_dependent_arms_are_complementary_and_take_the_two_values():
    keys = jax.random.split(jax.random.key(0), 200)
    probabilities = jax.vmap(lambda k: dependent_arms(k, 0.25).arm_probabilities)(keys)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert set(np.round(np.asarray(probabilities[:, 0]), 4)) == {0.25, 0.75}


def test_two_step_transitions_and_switches_have_the_stated_rates():
    task = make_meta_task("two-step")
    records = jax.jit(lambda k: evaluate_policy(task, reference_policy("random", 2), k, 200))(jax.random.key(1))
    common = np.asarray(records.info["common_transition"])
    assert abs(common.mean() - 0.8) < 0.01  # 20 000 trials: SE 0.003
    # a model-free bandit learner on the two-step task repeats rewarded actions regardless of the transition
    table = stay_probabilities(np.asarray(records.action), np.asarray(records.reward), common)
    assert np.all(np.abs(table - 0.5) < 0.05)  # random policy: stay = 1/2 everywhere
    assert records.action.shape == (200, TWO_STEP_TRIALS)


def test_two_step_regret_is_zero_for_an_oracle_that_knows_the_rich_state():
    task = make_meta_task("two-step")
    env = task.env

    def episode(key):
        params = task.sample_params(key)
        _, state = env.reset(key, params)

        def step(state, key):
            action = state.rich_state  # the action whose common transition leads to the rich state
            _, state, _, _, _, info = env.step(key, state, action, params)
            return state, info["regret"]

        return jax.lax.scan(step, state, jax.random.split(key, 100))[1]

    assert float(jnp.max(jax.vmap(episode)(jax.random.split(jax.random.key(2), 20)))) == 0.0


def test_harlow_random_policy_errs_half_the_time_and_objects_change_each_episode():
    task = make_meta_task("harlow")
    regrets = episode_regrets(task, "random", 400)
    assert abs(regrets.mean() - task.episode_length / 2) < 4 * regrets.std() / np.sqrt(400)
    first, second = task.sample_params(jax.random.key(0)), task.sample_params(jax.random.key(1))
    assert not np.allclose(first.objects, second.objects)


@pytest.mark.parametrize("env_id, steps", [("BernoulliBandit-misc", 100), ("MetaMaze-misc", 200)])
def test_gymnax_environments_run_unchanged_in_the_harness(env_id, steps):
    env, env_params = gymnax.make(env_id)
    observation_size = env.observation_space(env_params).shape[0]
    task = MetaTask(env_id, env, fixed_params(env), steps, env.num_actions, observation_size)
    if env_id == "BernoulliBandit-misc":  # the meta-learner's LSTM acting on gymnax's own bandit
        agent = lstm_agent(task.num_inputs, task.num_actions, hidden=8)
        policy = agent_policy(task, agent, agent.init(jax.random.key(0)))
    else:
        policy = reference_policy("random", task.num_actions)
    records = jax.jit(lambda k: evaluate_policy(task, policy, k, 4))(jax.random.key(3))
    rewards = np.asarray(records.reward)
    assert rewards.shape == (4, steps) and np.all(np.isfinite(rewards))
    if env_id == "BernoulliBandit-misc":
        assert set(np.unique(rewards)) <= {0.0, 1.0} and 0 < rewards.mean() < 1
        assert np.asarray(records.done)[:, -1].all()  # truncated at max_steps_in_episode = 100
    else:
        assert set(np.unique(rewards)) <= {0.0, 10.0}
    # after an episode ends the next step input carries no previous action (harness reset)
    done = np.asarray(records.done)[:, :-1]
    previous = np.asarray(records.step_input.previous_action)[:, 1:]
    assert np.all(previous[done] == -1)
