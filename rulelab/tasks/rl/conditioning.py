"""Pavlovian conditioning with a complete-serial-compound (tapped-delay-line) stimulus representation.

Schultz, Dayan & Montague (1997, Science 275:1593): a trial is ``trial_length`` time steps; a conditioned
stimulus (CS) starts at ``cs_time`` and reward of size ``reward_size`` follows ``reward_delay`` steps later. The
representation has one feature per time step since CS onset: x_t = e_{t − cs_time} for t ≥ cs_time, and x_t = 0
before the CS (its onset is unpredictable, so pre-CS states carry no value). With a linear critic V(x) = w·x and
TD learning, δ moves from the reward to the CS over training, and omitting an expected reward gives δ < 0 at the
time the reward was due.

``reward_probability`` is a parameter leaf: 1 on acquisition trials, 0 on omission probes and extinction trials.
Actions are ignored (Pavlovian: one dummy action). The step that enters time step t returns the reward due at t.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from rulelab.core import Array, PRNGKey
from rulelab.tasks.rl.meta_task import DiscreteActionEnvironment, MetaTask


@struct.dataclass
class ConditioningState(environment.EnvState):
    time: Array  # [] int32 time step within the trial


@struct.dataclass
class ConditioningParams(environment.EnvParams):
    reward_probability: Array = 1.0  # [] 1 = acquisition, 0 = omission / extinction
    reward_size: Array = 1.0
    max_steps_in_episode: Array = 25


class PavlovianConditioning(DiscreteActionEnvironment):
    """CS at ``cs_time``, reward ``reward_delay`` steps later, complete-serial-compound observation."""

    env_name = "PavlovianConditioning"
    num_discrete_actions = 1  # Pavlovian: nothing to choose

    def __init__(self, trial_length: int = 25, cs_time: int = 5, reward_delay: int = 10):
        super().__init__()
        if not 0 < cs_time < cs_time + reward_delay < trial_length:
            raise ValueError("need 0 < cs_time < cs_time + reward_delay < trial_length")
        self.trial_length, self.cs_time, self.reward_delay = trial_length, cs_time, reward_delay

    @property
    def reward_time(self) -> int:
        return self.cs_time + self.reward_delay

    @property
    def num_features(self) -> int:
        return self.trial_length - self.cs_time

    @property
    def observation_size(self) -> int:
        return self.num_features

    @property
    def default_params(self) -> ConditioningParams:
        return ConditioningParams(max_steps_in_episode=self.trial_length)

    def step_env(self, key, state: ConditioningState, action, params: ConditioningParams):
        del action
        time = state.time + 1
        delivered = jax.random.bernoulli(key, params.reward_probability)
        reward = jnp.where((time == self.reward_time) & delivered, params.reward_size, 0.0).astype(jnp.float32)
        state = ConditioningState(time=time)
        return self.get_obs(state, params), state, reward, time >= self.trial_length - 1, {}

    def reset_env(self, key, params: ConditioningParams):
        del key
        state = ConditioningState(time=jnp.zeros((), jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(self, state: ConditioningState, params: ConditioningParams, key=None) -> Array:
        return jax.nn.one_hot(state.time - self.cs_time, self.num_features)  # zeros before the CS

    def is_terminated(self, state, params) -> Array:
        return state.time >= self.trial_length - 1


def conditioning_task(reward_probability: float = 1.0, *, trial_length: int = 25, cs_time: int = 5,
                      reward_delay: int = 10) -> MetaTask:
    """One Pavlovian trial per episode (``trial_length − 1`` transitions)."""
    env = PavlovianConditioning(trial_length, cs_time, reward_delay)

    def sample(key: PRNGKey) -> ConditioningParams:
        del key
        return ConditioningParams(reward_probability=reward_probability, max_steps_in_episode=trial_length)

    return MetaTask("conditioning", env, sample, trial_length - 1, 1, env.num_features, (), feedback_inputs=False)
