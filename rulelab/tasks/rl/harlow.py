"""A vector (non-visual) Harlow task (Harlow 1949, Psychol. Rev. 56:51; as meta-RL in Wang et al. 2018).

Each episode draws two new random objects (Gaussian vectors of ``object_size``); one of them (object 0, an
arbitrary label since both are random) is rewarded for the whole episode. On each of ``max_steps_in_episode``
trials (6) the two objects appear in random left/right positions; the observation is [left object, right object,
t / T] and the action picks a side. Choosing the rewarded object pays 1, the other 0. A learner that has
"learned to learn" is at chance on trial 1 and near perfect from trial 2 on.

``info["regret"]`` = 1 for a wrong choice, 0 otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from rulelab.core import Array, PRNGKey
from rulelab.tasks.rl.meta_task import DiscreteActionEnvironment, MetaTask

TRIALS_PER_EPISODE = 6
OBJECT_SIZE = 8


@struct.dataclass
class HarlowState(environment.EnvState):
    time: Array  # [] int32
    rewarded_on_left: Array  # [] bool, position of object 0 on the current trial


@struct.dataclass
class HarlowParams(environment.EnvParams):
    objects: Array = struct.field(default_factory=lambda: jnp.eye(2, OBJECT_SIZE))  # [2, object_size]; 0 rewarded
    max_steps_in_episode: Array = TRIALS_PER_EPISODE


class HarlowTask(DiscreteActionEnvironment):
    """Two objects, one always rewarded, shown in random positions each trial."""

    env_name = "HarlowTask"
    observation_low, observation_high = -float("inf"), float("inf")

    def __init__(self, object_size: int = OBJECT_SIZE):
        super().__init__()
        self.object_size = object_size

    @property
    def observation_size(self) -> int:
        return 2 * self.object_size + 1  # left object, right object, trial index

    @property
    def default_params(self) -> HarlowParams:
        return HarlowParams(objects=jnp.eye(2, self.object_size))

    def step_env(self, key, state: HarlowState, action, params: HarlowParams):
        correct = (action == 0) == state.rewarded_on_left
        reward = correct.astype(jnp.float32)
        state = HarlowState(time=state.time + 1, rewarded_on_left=jax.random.bernoulli(key))
        info = {"regret": 1.0 - reward}
        return self.get_obs(state, params), state, reward, jnp.array(False), info

    def reset_env(self, key, params: HarlowParams):
        state = HarlowState(time=jnp.zeros((), jnp.int32), rewarded_on_left=jax.random.bernoulli(key))
        return self.get_obs(state, params), state

    def get_obs(self, state: HarlowState, params: HarlowParams, key=None) -> Array:
        rewarded, other = params.objects[0], params.objects[1]
        left = jnp.where(state.rewarded_on_left, rewarded, other)
        right = jnp.where(state.rewarded_on_left, other, rewarded)
        time = jnp.atleast_1d(state.time / params.max_steps_in_episode)
        return jnp.concatenate([left, right, time]).astype(jnp.float32)


def harlow_task(num_trials: int = TRIALS_PER_EPISODE, object_size: int = OBJECT_SIZE) -> MetaTask:
    env = HarlowTask(object_size)

    def sample(key: PRNGKey) -> HarlowParams:
        return HarlowParams(objects=jax.random.normal(key, (2, object_size)), max_steps_in_episode=num_trials)

    return MetaTask("harlow", env, sample, num_trials, env.num_actions, env.observation_size, ("regret",))
