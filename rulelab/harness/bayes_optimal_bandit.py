"""The Bayes-optimal policy for a two-armed Bernoulli bandit with independent Beta(1, 1) priors and a known horizon.

With ``T`` pulls and uniform priors on both arms' success probabilities, the policy that maximises the expected
total reward is found exactly by dynamic programming over the posterior's sufficient statistics, the counts
(s₁, f₁, s₂, f₂) of successes and failures (Bellman 1956; the finite-horizon counterpart of Gittins' index):

    V_T(·) = 0,
    Q_t(k) = p̂_k (1 + V_{t+1}(success on k)) + (1 − p̂_k) V_{t+1}(failure on k),   p̂_k = (s_k + 1) / (n_k + 2),
    V_t = max_k Q_t(k),

where t = s₁ + f₁ + s₂ + f₂ pulls have been made. Its expected regret over the prior is exact, without sampling:
T · E[max(p₁, p₂)] − V_0 = 2T/3 − V_0. This is the lower bound no learner can beat on average over
``bandit-independent`` episodes, so it measures how close a meta-learner comes to optimal.

States are stored flat: those with t pulls in lexicographic order of (s₁, f₁, s₂) (f₂ follows), after the
C(t + 3, 4) states with fewer pulls; ``C(T + 4, 4)`` states in all (4.6 million for T = 100, one byte each).
"""

from __future__ import annotations

from math import comb
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rulelab.harness.bandit_policies import ArmCounts, argmax_random_ties, observe
from rulelab.harness.rl import Policy

TIE = 2  # action table entry when both arms are equally good


class StateIndex(NamedTuple):
    """Tables that turn counts (s₁, f₁, s₂; t) into a flat state index (numpy or jax arrays alike)."""

    offset: np.ndarray  # [T + 2] states with fewer than t pulls: C(t + 3, 4)
    first: np.ndarray  # [T + 2, T + 2] states at t whose s₁ is smaller: Σ_{x < s₁} C(t − x + 2, 2)
    second: np.ndarray  # [T + 2, T + 2] with s₁ fixed and r = t − s₁, states whose f₁ is smaller: Σ_{y<f₁} (r − y + 1)

    def __call__(self, s1, f1, s2, t):
        return self.offset[t] + self.first[t, s1] + self.second[t - s1, f1] + s2


def state_index(horizon: int) -> StateIndex:
    size = horizon + 2
    offset = np.array([comb(t + 3, 4) for t in range(size)], np.int64)
    first = np.zeros((size, size), np.int64)
    second = np.zeros((size, size), np.int64)
    for t in range(size):
        for s1 in range(1, size):
            first[t, s1] = first[t, s1 - 1] + (comb(t - (s1 - 1) + 2, 2) if s1 - 1 <= t else 0)
            second[t, s1] = second[t, s1 - 1] + max(t - (s1 - 1) + 1, 0)
    return StateIndex(offset, first, second)


class BayesOptimalSolution(NamedTuple):
    horizon: int
    actions: np.ndarray  # [C(T + 4, 4)] int8: 0 or 1 = the better arm, TIE = either
    expected_reward: float  # V_0
    expected_regret: float  # 2T/3 − V_0, over the prior


def solve(horizon: int) -> BayesOptimalSolution:
    """Backward induction over every posterior state of a ``horizon``-pull two-armed Bernoulli bandit."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    index = state_index(horizon)
    actions = np.full(comb(horizon + 4, 4), TIE, np.int8)
    values_next = np.zeros(comb(horizon + 3, 3))  # V_T over the states with T pulls
    for t in range(horizon - 1, -1, -1):
        grid = np.indices((t + 1, t + 1, t + 1)).reshape(3, -1)
        s1, f1, s2 = grid[:, grid.sum(axis=0) <= t]  # lexicographic, as the index orders them
        f2 = t - s1 - f1 - s2
        base = index.offset[t + 1]
        value = lambda a, b, c: values_next[index(a, b, c, t + 1) - base]  # noqa: E731
        p1, p2 = (s1 + 1) / (s1 + f1 + 2), (s2 + 1) / (s2 + f2 + 2)
        q1 = p1 * (1 + value(s1 + 1, f1, s2)) + (1 - p1) * value(s1, f1 + 1, s2)
        q2 = p2 * (1 + value(s1, f1, s2 + 1)) + (1 - p2) * value(s1, f1, s2)  # f₂ + 1 is implied by t + 1
        here = index(s1, f1, s2, t)
        gap = q1 - q2
        actions[here] = np.where(gap > 1e-9, 0, np.where(gap < -1e-9, 1, TIE))
        values_next = np.maximum(q1, q2)
    expected_reward = float(values_next[0])
    return BayesOptimalSolution(horizon, actions, expected_reward, 2.0 * horizon / 3.0 - expected_reward)


def bayes_optimal_policy(solution: BayesOptimalSolution) -> Policy:
    """The solved policy as a ``Policy`` over arm counts (two arms, rewards 0/1); ties broken at random.

    Past the horizon it keeps the last decision's rule (greedy on the posterior mean)."""
    index = jax.tree.map(jnp.asarray, state_index(solution.horizon))
    actions = jnp.asarray(solution.actions)

    def init() -> ArmCounts:
        return ArmCounts(jnp.zeros((2,)), jnp.zeros((2,)))

    def act(counts: ArmCounts, step_input, key):
        counts = observe(counts, step_input)
        pulls = counts.pulls.astype(jnp.int32)
        successes = jnp.round(counts.successes).astype(jnp.int32)
        t = jnp.sum(pulls)
        in_table = t < solution.horizon
        safe = jnp.where(in_table, 1, 0)  # index a valid state when past the horizon
        action = actions[index(successes[0] * safe, (pulls[0] - successes[0]) * safe, successes[1] * safe,
                               t * safe)]
        greedy = (counts.successes + 1.0) / (counts.pulls + 2.0)
        scores = jnp.where(action == TIE, jnp.zeros(2), jax.nn.one_hot(action, 2))
        return argmax_random_ties(key, jnp.where(in_table, scores, greedy)), counts

    return Policy(init, act)
