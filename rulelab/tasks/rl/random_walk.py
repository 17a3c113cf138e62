"""The 5-state random walk of Sutton & Barto (2018, Example 6.2), the classic check of TD prediction.

Non-terminal states A–E (1..5) between terminals 0 and 6; every episode starts in C; each step moves left or
right with probability ½ whatever the action; reaching 6 pays 1, everything else 0; γ = 1. The true values are
v(A..E) = 1/6, 2/6, 3/6, 4/6, 5/6. The observation is a one-hot of the non-terminal state (tabular features).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from rulelab.core import Array
from rulelab.tasks.rl.meta_task import DiscreteActionEnvironment, MetaTask, fixed_params

NUM_STATES = 5
TRUE_VALUES = jnp.arange(1, NUM_STATES + 1) / (NUM_STATES + 1)


@struct.dataclass
class RandomWalkState(environment.EnvState):
    position: Array  # [] int32 in 0..6; 0 and 6 are terminal
    time: Array  # [] int32


@struct.dataclass
class RandomWalkParams(environment.EnvParams):
    max_steps_in_episode: Array = 1_000_000  # episodes end at a terminal, not by time


class RandomWalk(DiscreteActionEnvironment):
    """Sutton & Barto's random walk; actions are ignored."""

    env_name = "RandomWalk"
    num_discrete_actions = 1
    observation_size = NUM_STATES

    @property
    def default_params(self) -> RandomWalkParams:
        return RandomWalkParams()

    def step_env(self, key, state: RandomWalkState, action, params):
        del action
        position = state.position + jnp.where(jax.random.bernoulli(key), 1, -1)
        state = RandomWalkState(position=position, time=state.time + 1)
        reward = (position == NUM_STATES + 1).astype(jnp.float32)
        return self.get_obs(state, params), state, reward, self.is_terminated(state, params), {}

    def reset_env(self, key, params):
        del key
        state = RandomWalkState(position=jnp.asarray((NUM_STATES + 1) // 2, jnp.int32), time=jnp.zeros((), jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(self, state: RandomWalkState, params, key=None) -> Array:
        return jax.nn.one_hot(state.position - 1, NUM_STATES)  # zeros at the terminals

    def is_terminated(self, state: RandomWalkState, params) -> Array:
        return (state.position == 0) | (state.position == NUM_STATES + 1)


def random_walk_task(steps_per_segment: int = 16) -> MetaTask:
    """A continuing stream of random-walk episodes (the harness resets at each terminal)."""
    env = RandomWalk()
    return MetaTask("random-walk", env, fixed_params(env), steps_per_segment, 1, NUM_STATES, (),
                    feedback_inputs=False)
