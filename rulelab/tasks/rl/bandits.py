"""Two-armed Bernoulli bandits of Wang et al. (2016, "Learning to reinforcement learn", arXiv:1611.05763).

One episode is one bandit played for ``max_steps_in_episode`` trials (100). Arm probabilities are parameters
(array leaves), drawn per episode:

- independent arms: p_1, p_2 ~ U[0, 1] independently;
- dependent arms: p_1 = 1 − p_2, with p_1 drawn uniformly from {q, 1 − q}: easy q = 0.1, medium q = 0.25,
  hard q = 0.4.

The observation is the trial index t / T (the harness adds the previous action and reward). ``info["regret"]``
is the expected regret of the chosen arm, max_k p_k − p_a, so cumulative regret needs no Monte-Carlo noise from
the rewards.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from rulelab.core import Array, PRNGKey
from rulelab.tasks.rl.meta_task import DiscreteActionEnvironment, MetaTask

TRIALS_PER_EPISODE = 100
# dependent-arm difficulty -> q, with p_1 ∈ {q, 1 − q} (Wang et al. 2016)
DEPENDENT_ARM_PROBABILITIES = {"easy": 0.1, "medium": 0.25, "hard": 0.4}


@struct.dataclass
class BanditState(environment.EnvState):
    time: Array  # [] int32, trials played so far


@struct.dataclass
class BanditParams(environment.EnvParams):
    arm_probabilities: Array = struct.field(default_factory=lambda: jnp.array([0.25, 0.75]))  # [arms]
    max_steps_in_episode: Array = TRIALS_PER_EPISODE  # [] trials per episode


class BernoulliArms(DiscreteActionEnvironment):
    """A K-armed Bernoulli bandit whose arm probabilities are environment parameters."""

    env_name = "BernoulliArms"
    observation_size = 1

    def __init__(self, num_arms: int = 2):
        super().__init__()
        self.num_arms = self.num_discrete_actions = num_arms

    @property
    def default_params(self) -> BanditParams:
        return BanditParams(arm_probabilities=jnp.full((self.num_arms,), 0.5))

    def step_env(self, key, state: BanditState, action, params: BanditParams):
        probabilities = params.arm_probabilities
        reward = jax.random.bernoulli(key, probabilities[action]).astype(jnp.float32)
        state = BanditState(time=state.time + 1)
        info = {"regret": jnp.max(probabilities) - probabilities[action]}
        return self.get_obs(state, params), state, reward, jnp.array(False), info

    def reset_env(self, key, params: BanditParams):
        del key
        state = BanditState(time=jnp.zeros((), jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(self, state: BanditState, params: BanditParams, key=None) -> Array:
        return jnp.atleast_1d(state.time / params.max_steps_in_episode).astype(jnp.float32)


def independent_arms(key: PRNGKey, num_arms: int = 2) -> BanditParams:
    """p_k ~ U[0, 1] independently."""
    return BanditParams(arm_probabilities=jax.random.uniform(key, (num_arms,)))


def dependent_arms(key: PRNGKey, low_probability: Any) -> BanditParams:
    """p_1 = 1 − p_2 with p_1 ∈ {q, 1 − q} uniformly (``low_probability`` = q, may be traced)."""
    p1 = jnp.where(jax.random.bernoulli(key), low_probability, 1.0 - low_probability)
    return BanditParams(arm_probabilities=jnp.stack([p1, 1.0 - p1]).astype(jnp.float32))


def bandit_task(name: str, sample_params, num_trials: int = TRIALS_PER_EPISODE) -> MetaTask:
    env = BernoulliArms(2)

    def sample(key: PRNGKey) -> BanditParams:
        return sample_params(key).replace(max_steps_in_episode=num_trials)

    return MetaTask(name, env, sample, num_trials, env.num_actions, env.observation_size, ("regret",))


def independent_bandit_task(num_trials: int = TRIALS_PER_EPISODE) -> MetaTask:
    return bandit_task("bandit-independent", independent_arms, num_trials)


def dependent_bandit_task(difficulty: str, num_trials: int = TRIALS_PER_EPISODE) -> MetaTask:
    if difficulty not in DEPENDENT_ARM_PROBABILITIES:
        raise ValueError(f"unknown difficulty {difficulty!r}; valid: {', '.join(DEPENDENT_ARM_PROBABILITIES)}")
    q = DEPENDENT_ARM_PROBABILITIES[difficulty]
    return bandit_task(f"bandit-{difficulty}", lambda key: dependent_arms(key, q), num_trials)
