"""Reference bandit policies, run as ``Policy`` objects in the same rollout as the learners.

Each keeps per-arm pull and success counts, updated from the previous action and reward in its ``StepInput``
(so it works on any task with discrete actions and rewards in [0, 1]; on the two-step and Harlow tasks it treats
actions as arms, which is what a model-free bandit learner would do there).

- ``random``: uniform choice.
- ``greedy``: arg-max of the posterior mean (s_k + 1) / (n_k + 2) under a Beta(1, 1) prior, ties broken at random.
- ``ucb``: UCB1 (Auer, Cesa-Bianchi & Fischer 2002): each arm once, then arg-max s_k/n_k + sqrt(2 ln t / n_k).
- ``thompson``: Thompson (1933) sampling, θ_k ~ Beta(1 + s_k, 1 + n_k − s_k), pull arg-max θ_k.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array
from rulelab.harness.rl import Policy, StepInput


class ArmCounts(NamedTuple):
    pulls: Array  # [arms]
    successes: Array  # [arms] summed rewards


def observe(counts: ArmCounts, step_input: StepInput) -> ArmCounts:
    """Credit the previous reward to the previous action (nothing at an episode start, where it is −1)."""
    pulled = jax.nn.one_hot(step_input.previous_action, counts.pulls.shape[0])
    return ArmCounts(counts.pulls + pulled, counts.successes + pulled * step_input.previous_reward)


def argmax_random_ties(key, scores: Array) -> Array:
    best = scores >= jnp.max(scores)
    return jax.random.categorical(key, jnp.where(best, 0.0, -jnp.inf)).astype(jnp.int32)


def random_scores(counts: ArmCounts, key) -> Array:
    del key
    return jnp.zeros_like(counts.pulls)


def greedy_scores(counts: ArmCounts, key) -> Array:
    del key
    return (counts.successes + 1.0) / (counts.pulls + 2.0)


def ucb_scores(counts: ArmCounts, key) -> Array:
    del key
    total = jnp.sum(counts.pulls)
    pulls = jnp.maximum(counts.pulls, 1.0)
    bonus = jnp.sqrt(2.0 * jnp.log(jnp.maximum(total, 1.0)) / pulls)
    return jnp.where(counts.pulls == 0, jnp.inf, counts.successes / pulls + bonus)


def thompson_scores(counts: ArmCounts, key) -> Array:
    return jax.random.beta(key, 1.0 + counts.successes, 1.0 + counts.pulls - counts.successes)


def index_policy(num_arms: int, scores: Callable[[ArmCounts, Array], Array]) -> Policy:
    """A policy that pulls the arm with the highest ``scores(counts, key)`` (ties at random)."""

    def init() -> ArmCounts:
        return ArmCounts(jnp.zeros((num_arms,)), jnp.zeros((num_arms,)))

    def act(counts: ArmCounts, step_input: StepInput, key):
        counts = observe(counts, step_input)
        score_key, tie_key = jax.random.split(key)
        return argmax_random_ties(tie_key, scores(counts, score_key)), counts

    return Policy(init, act)


REFERENCE_POLICIES: dict[str, Callable[[ArmCounts, Array], Array]] = {
    "random": random_scores,
    "greedy": greedy_scores,
    "ucb": ucb_scores,
    "thompson": thompson_scores,
}


def reference_policy(name: str, num_arms: int) -> Policy:
    if name not in REFERENCE_POLICIES:
        raise ValueError(f"unknown reference policy {name!r}; valid: {', '.join(REFERENCE_POLICIES)}")
    return index_policy(num_arms, REFERENCE_POLICIES[name])


def selected_reference_policy(names: tuple[str, ...], index, num_arms: int) -> Policy:
    """The reference policy ``names[index]`` with a traced ``index``: vmapping over ``index`` evaluates several
    reference policies in one compiled program."""
    branches = [REFERENCE_POLICIES[name] for name in names]
    return index_policy(num_arms, lambda counts, key: jax.lax.switch(index, branches, counts, key))
