"""The Bayes-optimal two-armed Bernoulli bandit policy: exact values for short horizons worked out by hand, its
state index, and a rollout of the solved policy agreeing with the exact expected regret."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from rulelab.harness.bandit_policies import reference_policy
from rulelab.harness.bayes_optimal_bandit import TIE, bayes_optimal_policy, solve, state_index
from rulelab.harness.rl import evaluate_policy
from rulelab.tasks.rl import make_meta_task


def test_the_state_index_numbers_every_count_state_once_in_order():
    index = state_index(6)
    for t in range(7):
        grid = np.indices((t + 1,) * 3).reshape(3, -1)
        s1, f1, s2 = grid[:, grid.sum(axis=0) <= t]
        np.testing.assert_array_equal(index(s1, f1, s2, t), np.arange(index.offset[t], index.offset[t + 1]))


def test_short_horizons_match_the_values_worked_out_by_hand():
    # T = 1: either arm, mean 1/2; E[max(p1, p2)] = 2/3, so regret 2/3 − 1/2.
    one = solve(1)
    assert one.expected_reward == pytest.approx(0.5) and one.expected_regret == pytest.approx(1 / 6)
    # T = 2: pull an arm (1/2); after a success stay (posterior mean 2/3), after a failure switch (1/2):
    # V = 1/2 + 1/2 · 2/3 + 1/2 · 1/2 = 13/12, regret 4/3 − 13/12 = 1/4.
    two = solve(2)
    assert two.expected_reward == pytest.approx(13 / 12) and two.expected_regret == pytest.approx(0.25)
    index = state_index(2)
    assert two.actions[index(0, 0, 0, 0)] == TIE  # symmetric start
    assert two.actions[index(1, 0, 0, 1)] == 0  # stay after a success on arm 0
    assert two.actions[index(0, 1, 0, 1)] == 1  # leave arm 0 after a failure


def test_the_solved_policy_attains_its_exact_regret_and_beats_thompson_sampling():
    task = make_meta_task("bandit-independent")
    solution = solve(task.episode_length)
    assert 1.5 < solution.expected_regret < 2.0  # below Thompson's ≈ 2.8 and greedy's ≈ 2.8 (test_bandits)
    key = jax.random.key(0)
    regret = {}
    policies = {"bayes_optimal": bayes_optimal_policy(solution), "thompson": reference_policy("thompson", 2)}
    for name, policy in policies.items():
        records = jax.jit(lambda k, policy=policy: evaluate_policy(task, policy, k, 400))(key)
        regret[name] = np.asarray(records.info["regret"]).sum(axis=1)
    optimal = regret["bayes_optimal"]
    assert abs(optimal.mean() - solution.expected_regret) < 4 * optimal.std() / np.sqrt(optimal.size)
    assert np.mean(regret["thompson"] - optimal) > 0  # same episodes: the optimum is lower on average
