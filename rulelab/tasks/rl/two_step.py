"""The two-step task (Daw et al. 2011, Neuron 69:1204) in the form used by Wang et al. (2018, Nat. Neurosci.
21:860, Fig. 4): one agent step per trial.

A first-stage action a ∈ {0, 1} leads to second-stage state a with probability ``common_probability`` (0.8,
"common") and to state 1 − a otherwise ("rare"); the second-stage state pays 1 with probability 0.9 if it is
the currently rich state and 0.1 otherwise, and at every trial the rich state switches with probability 0.025.
The next observation shows which second-stage state was reached (one-hot) and the trial index, so a learner can
credit the outcome to the state rather than to the action: a model-based learner repeats a rewarded action after
a common transition but switches after a rare one, a model-free learner repeats any rewarded action.

``info["regret"]`` = max_a E[r | a] − E[r | chosen a] with E[r | a] = c·p(a) + (1 − c)·p(1 − a);
``info["common_transition"]`` flags common transitions (for stay-probability analyses).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from rulelab.core import Array, PRNGKey
from rulelab.tasks.rl.meta_task import DiscreteActionEnvironment, MetaTask

TRIALS_PER_EPISODE = 100


@struct.dataclass
class TwoStepState(environment.EnvState):
    time: Array  # [] int32 trials played
    rich_state: Array  # [] int32, the second-stage state currently paying ``rich_probability``
    last_second_stage: Array  # [] int32, −1 before the first trial


@struct.dataclass
class TwoStepParams(environment.EnvParams):
    initial_rich_state: Array = 0  # [] int32
    common_probability: Array = 0.8
    rich_probability: Array = 0.9
    poor_probability: Array = 0.1
    switch_probability: Array = 0.025
    max_steps_in_episode: Array = TRIALS_PER_EPISODE


def second_stage_reward_probabilities(rich_state: Array, params: TwoStepParams) -> Array:
    """[2] reward probability of each second-stage state."""
    return jnp.where(jnp.arange(2) == rich_state, params.rich_probability, params.poor_probability)


class TwoStepTask(DiscreteActionEnvironment):
    """Daw et al.'s two-step task with switching reward probabilities, one step per trial."""

    env_name = "TwoStepTask"
    observation_size = 3  # one-hot second-stage state reached on the last trial, trial index

    @property
    def default_params(self) -> TwoStepParams:
        return TwoStepParams()

    def step_env(self, key, state: TwoStepState, action, params: TwoStepParams):
        transition_key, reward_key, switch_key = jax.random.split(key, 3)
        common = jax.random.bernoulli(transition_key, params.common_probability)
        second_stage = jnp.where(common, action, 1 - action).astype(jnp.int32)
        reward_probabilities = second_stage_reward_probabilities(state.rich_state, params)
        reward = jax.random.bernoulli(reward_key, reward_probabilities[second_stage]).astype(jnp.float32)
        c = params.common_probability
        action_values = c * reward_probabilities + (1 - c) * reward_probabilities[::-1]
        switch = jax.random.bernoulli(switch_key, params.switch_probability)
        state = TwoStepState(
            time=state.time + 1,
            rich_state=jnp.where(switch, 1 - state.rich_state, state.rich_state),
            last_second_stage=second_stage,
        )
        info = {"regret": jnp.max(action_values) - action_values[action], "common_transition": common}
        return self.get_obs(state, params), state, reward, jnp.array(False), info

    def reset_env(self, key, params: TwoStepParams):
        del key
        state = TwoStepState(time=jnp.zeros((), jnp.int32), rich_state=jnp.asarray(params.initial_rich_state,
                             jnp.int32), last_second_stage=-jnp.ones((), jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(self, state: TwoStepState, params: TwoStepParams, key=None) -> Array:
        reached = jax.nn.one_hot(state.last_second_stage, 2)  # zeros before the first trial
        return jnp.concatenate([reached, jnp.atleast_1d(state.time / params.max_steps_in_episode)]).astype(
            jnp.float32)


def random_rich_state(key: PRNGKey) -> TwoStepParams:
    """A task instance: which second-stage state starts rich is a coin flip."""
    return TwoStepParams(initial_rich_state=jax.random.bernoulli(key).astype(jnp.int32))


def two_step_task(num_trials: int = TRIALS_PER_EPISODE) -> MetaTask:
    env = TwoStepTask()

    def sample(key: PRNGKey) -> TwoStepParams:
        return random_rich_state(key).replace(max_steps_in_episode=num_trials)

    return MetaTask("two-step", env, sample, num_trials, env.num_actions, env.observation_size,
                    ("regret", "common_transition"))
