"""What the RL harness needs to know about an environment, on top of the gymnax ``Environment`` itself."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.environments.environment import Environment

from rulelab.core import PRNGKey


class MetaTask(NamedTuple):
    """A distribution of episodes: a gymnax environment and a sampler of its (array-leaf) parameters.

    One task instance (a bandit's arm probabilities, a Harlow problem's two objects) is one draw of
    ``sample_params``; a batch of tasks is a ``vmap`` of it. ``episode_length`` agent steps make one episode.
    """

    name: str
    env: Environment
    sample_params: Callable[[PRNGKey], Any]
    episode_length: int
    num_actions: int
    observation_size: int
    info_keys: tuple[str, ...] = ()  # per-step ``info`` entries the harness records (e.g. "regret")
    feedback_inputs: bool = True  # agent input gets the previous action (one-hot) and reward (RL² / Wang et al.)

    @property
    def num_inputs(self) -> int:
        """Width of the agent's input vector."""
        return self.observation_size + (self.num_actions + 1 if self.feedback_inputs else 0)


def fixed_params(env: Environment) -> Callable[[PRNGKey], Any]:
    """A sampler that always returns the environment's default parameters (gymnax environments as shipped)."""

    def sample(key: PRNGKey) -> Any:
        del key
        return env.default_params

    return sample


class DiscreteActionEnvironment(Environment):
    """gymnax ``Environment`` boilerplate for the tasks here: a name, ``num_actions`` discrete actions, a Box
    observation of ``observation_size`` in [``observation_low``, ``observation_high``], and no natural terminal
    unless a subclass says so (episodes end by ``max_steps_in_episode``)."""

    env_name: str = "DiscreteActionEnvironment"
    num_discrete_actions: int = 2
    observation_low: float = 0.0
    observation_high: float = 1.0
    observation_size: int  # each task sets it (a class attribute, or a property when it depends on the instance)

    def is_terminated(self, state, params):
        return jnp.array(False)

    @property
    def name(self) -> str:
        return self.env_name

    @property
    def num_actions(self) -> int:
        return self.num_discrete_actions

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_discrete_actions)

    def observation_space(self, params) -> spaces.Box:
        return spaces.Box(self.observation_low, self.observation_high, (self.observation_size,), jnp.float32)
