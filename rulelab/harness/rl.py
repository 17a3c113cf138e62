"""Episode rollouts and the RL training loop, for any gymnax environment and any agent / learning rule.

A policy acts on a ``StepInput`` (observation, previous action, previous reward); a network agent sees them
concatenated (Wang et al. 2016; Duan et al. 2016's RL²). ``rollout`` steps a batch-free episode stream with
``lax.scan``; the harness vmaps it over episodes, so thousands of episodes run in one compiled program.

Training (``make_rl_train``) repeats: reset a batch of streams on freshly sampled task parameters, run the episode
in segments of ``segment_length`` steps with the weights fixed inside a segment, and after each segment apply
the rule's gradient-signed updates (averaged over the batch) with an optax optimizer. A whole-episode segment is
backprop-through-time A2C; one-step segments make an online rule (TD with eligibility traces) update at every
step. The rule's state (eligibility traces) belongs to each stream and is re-initialised at each episode start.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rulelab.core import Array, LearningRule, Params, PRNGKey
from rulelab.harness.train import make_optimizer
from rulelab.nets.recurrent import Agent, Carry
if TYPE_CHECKING:  # annotations only: importing gymnax costs seconds, so `import rulelab` does not
    from rulelab.tasks.rl.meta_task import MetaTask

Hparams = dict[str, Array]


class StepInput(NamedTuple):
    observation: Array  # [O]
    previous_action: Array  # [] int32, −1 at an episode start
    previous_reward: Array  # [], 0 at an episode start


class Policy(NamedTuple):
    """``init() -> state``; ``act(state, step_input, key) -> (action, state)``. Network agents and reference
    bandit policies (UCB, Thompson, ...) share this form, so they run in the same rollout."""

    init: Callable[[], Any]
    act: Callable[[Any, StepInput, PRNGKey], tuple[Array, Any]]


class EpisodeStream(NamedTuple):
    env_state: Any
    env_params: Any
    step_input: StepInput
    policy_state: Any


class StepRecord(NamedTuple):
    """What one environment step leaves behind (leading axes added by scan / vmap)."""

    step_input: StepInput  # what the policy saw
    policy_state: Any  # policy state before acting (kept only when asked: it can be large)
    action: Array  # [] int32
    reward: Array  # []
    done: Array  # [] bool, the episode ended with this step (terminated or truncated)
    info: dict[str, Array]  # the task's ``info_keys``


class Trajectory(NamedTuple):
    """A segment of experience as learning rules see it (one stream; leading time axis T)."""

    carry: Carry  # agent carry before the first step
    inputs: Array  # [T, I] agent inputs
    actions: Array  # [T] int32
    rewards: Array  # [T]
    discounts: Array  # [T] 0 where the episode ended with this step, else 1 (γ is the rule's)
    resets: Array  # [T] bool, the carry was reset to its initial value before this step
    bootstrap_inputs: Array  # [I] agent input after the last step, for V(s_T)


def first_step_input(observation: Array) -> StepInput:
    return StepInput(observation, -jnp.ones((), jnp.int32), jnp.zeros(()))


def agent_inputs(task: MetaTask, step_input: StepInput) -> Array:
    """[observation, one_hot(previous action), previous reward], or the observation alone (any leading axes)."""
    if not task.feedback_inputs:
        return step_input.observation
    action = jax.nn.one_hot(step_input.previous_action, task.num_actions)  # zeros for −1
    return jnp.concatenate([step_input.observation, action, step_input.previous_reward[..., None]], axis=-1)


def agent_policy(task: MetaTask, agent: Agent, params: Params) -> Policy:
    """Sample actions from the agent's softmax policy; the policy state is the agent's carry."""

    def act(carry, step_input: StepInput, key):
        output, carry = agent.apply(params, carry, agent_inputs(task, step_input))
        return jax.random.categorical(key, output.logits).astype(jnp.int32), carry

    return Policy(agent.initial_carry, act)


def start_episode(task: MetaTask, policy: Policy, key: PRNGKey) -> EpisodeStream:
    """Draw a task instance, reset the environment and the policy."""
    params_key, reset_key = jax.random.split(key)
    env_params = task.sample_params(params_key)
    observation, env_state = task.env.reset(reset_key, env_params)
    return EpisodeStream(env_state, env_params, first_step_input(observation), policy.init())


def rollout(task: MetaTask, policy: Policy, stream: EpisodeStream, key: PRNGKey, num_steps: int,
            *, keep_policy_state: bool = False) -> tuple[EpisodeStream, StepRecord]:
    """``num_steps`` environment steps of one stream; gymnax auto-resets the environment when an episode ends
    and the policy state and previous action / reward are reset with it."""

    def step(stream: EpisodeStream, key):
        act_key, env_key = jax.random.split(key)
        action, policy_state = policy.act(stream.policy_state, stream.step_input, act_key)
        observation, env_state, reward, terminated, truncated, info = task.env.step(
            env_key, stream.env_state, action, stream.env_params)
        done = jnp.logical_or(terminated, truncated)
        reward = jnp.asarray(reward, jnp.float32)
        next_input = StepInput(observation, jnp.where(done, -1, action).astype(jnp.int32),
                               jnp.where(done, 0.0, reward))
        policy_state = jax.tree.map(lambda init, new: jnp.where(done, init, new), policy.init(), policy_state)
        record = StepRecord(stream.step_input, stream.policy_state if keep_policy_state else (), action, reward,
                            done, {k: jnp.asarray(info[k], jnp.float32) for k in task.info_keys})
        return EpisodeStream(env_state, stream.env_params, next_input, policy_state), record

    return jax.lax.scan(step, stream, jax.random.split(key, num_steps))


def to_trajectory(task: MetaTask, carry: Carry, records: StepRecord, final_input: StepInput) -> Trajectory:
    """The learning rule's view of a rolled-out segment of one stream."""
    resets = jnp.concatenate([jnp.zeros((1,), bool), records.done[:-1]])
    return Trajectory(carry, agent_inputs(task, records.step_input), records.action, records.reward,
                      1.0 - records.done.astype(jnp.float32), resets, agent_inputs(task, final_input))


def unroll_trajectory(agent: Agent, params: Params, trajectory: Trajectory):
    """Re-run ``agent`` over a trajectory's inputs from its first carry, resetting the carry where the episode
    restarted. Returns (outputs [T], carries before each step [T, ...], output for ``bootstrap_inputs``)."""
    initial = agent.initial_carry()

    def step(carry, inputs):
        x, reset = inputs
        carry = jax.tree.map(lambda i, c: jnp.where(reset, i, c), initial, carry)
        output, new_carry = agent.apply(params, carry, x)
        return new_carry, (output, carry)

    carry, (outputs, carries) = jax.lax.scan(step, trajectory.carry, (trajectory.inputs, trajectory.resets))
    bootstrap, _ = agent.apply(params, carry, trajectory.bootstrap_inputs)
    return outputs, carries, bootstrap


# --------------------------------------------------------------------------------------------------------------
# training


@dataclasses.dataclass(frozen=True)
class RLTrainConfig:
    """Static settings of one RL training program; numbers to sweep go in ``hparams``."""

    num_updates: int = 1000  # training iterations, each a batch of whole episodes
    episodes_per_update: int = 32
    segment_length: int | None = None  # steps between weight updates; None = the whole episode (BPTT)
    optimizer: str = "adam"
    anneal_to_zero: tuple[str, ...] = ()  # hparams decayed linearly to 0 over training (e.g. entropy_coef)
    update_chunk: int | None = None  # episodes per vmapped piece of the rule update (see ``mean_update``)
    log_every: int = 50  # updates per recorded metrics row

    def segment(self, task: MetaTask) -> int:
        length = self.segment_length or task.episode_length
        if task.episode_length % length:
            raise ValueError(f"segment_length {length} must divide the episode length {task.episode_length}")
        return length

    def __post_init__(self):
        if self.num_updates % self.log_every:
            raise ValueError(f"num_updates ({self.num_updates}) must be a multiple of log_every ({self.log_every})")


class RLTrainState(NamedTuple):
    params: Params
    opt_state: Any
    key: PRNGKey
    update: Array  # [] int32 updates done


class BatchedLearningRule(NamedTuple):
    """A ``LearningRule`` that can also update from a whole batch of streams at once.

    ``batch_update(params, states [B], trajectories [B], *, keys [B]) -> (updates averaged over the batch,
    states [B], metrics [B])`` equals the batch mean of ``update``. A rule whose update is the gradient of a
    per-trajectory loss (A2C) provides it as the gradient of the batch-mean loss, so each weight gradient is one
    matrix product contracting over the batch. ``vmap`` of the per-stream gradient instead carries one gradient
    per episode through every step of the backward scan and reduces them only at the end: at 256 episodes per
    update that halved the LSTM's training rate per episode (benchmarks/meta_rl_throughput.py).
    """

    init: Callable[..., Any]
    update: Callable[..., Any]
    batch_update: Callable[..., Any]


RuleFactory = Callable[..., LearningRule | BatchedLearningRule]  # (agent, **rule_hparams) -> rule


def mean_update(rule, params: Params, states, trajectories: Trajectory, keys: PRNGKey, *, chunk: int | None = None):
    """The rule's updates averaged over a batch of streams, the streams' new states and per-stream metrics.

    With ``chunk`` the batch is processed ``gcd(chunk, B)`` streams at a time (``lax.map`` over equal chunks, each
    vmapped) and the chunk means averaged: the same numbers, a different schedule. Backpropamine needs it: its
    carry holds [H, H] Hebbian and eligibility matrices per stream and step, and its backward pass cost about
    twice as much per episode vmapped over 32–128 streams as alone or 4 at a time (XLA's CPU threading off made no
    difference, so we attribute it to the working set leaving the cache)."""
    batch = trajectories.rewards.shape[0]
    chunk = math.gcd(chunk, batch) if chunk else batch  # a divisor of the batch
    if chunk < batch:
        split = lambda x: x.reshape((batch // chunk, chunk) + x.shape[1:])  # noqa: E731
        merge = lambda x: x.reshape((batch,) + x.shape[2:])  # noqa: E731
        updates, states, metrics = jax.lax.map(
            lambda args: mean_update(rule, params, *args), jax.tree.map(split, (states, trajectories, keys)))
        return (jax.tree.map(lambda u: jnp.mean(u, axis=0), updates), jax.tree.map(merge, states),
                jax.tree.map(merge, metrics))
    if isinstance(rule, BatchedLearningRule):
        return rule.batch_update(params, states, trajectories, keys=keys)
    updates, states, metrics = jax.vmap(lambda s, t, k: rule.update(params, s, t, key=k))(states, trajectories,
                                                                                          keys)
    return jax.tree.map(lambda u: jnp.mean(u, axis=0), updates), states, metrics


def rule_hparams_at(hparams: Hparams, config: RLTrainConfig, update: Array) -> Hparams:
    """Rule hyperparameters for this update: everything but the learning rate, annealed ones scaled down."""
    progress = update / config.num_updates
    return {k: v * (1.0 - progress) if k in config.anneal_to_zero else v
            for k, v in hparams.items() if k != "learning_rate"}


def make_rl_train(task: MetaTask, agent: Agent, make_rule: RuleFactory, config: RLTrainConfig):
    """``(init, run)``: ``init(key, hparams) -> RLTrainState``; ``run(state, hparams, num_logs) -> (state,
    metrics [num_logs, ...])``. Both pure, so seeds and hyperparameters vmap."""
    segment = config.segment(task)
    num_segments = task.episode_length // segment

    def init(key: PRNGKey, hparams: Hparams) -> RLTrainState:
        params_key, run_key = jax.random.split(key)
        params = agent.init(params_key)
        return RLTrainState(params, make_optimizer(config.optimizer, hparams["learning_rate"]).init(params),
                            run_key, jnp.zeros((), jnp.int32))

    def train_step(state: RLTrainState, hparams: Hparams):
        rule = make_rule(agent, **rule_hparams_at(hparams, config, state.update))
        optimizer = make_optimizer(config.optimizer, hparams["learning_rate"])
        key, start_key, rule_key, segments_key = jax.random.split(state.key, 4)
        policy = agent_policy(task, agent, state.params)
        streams = jax.vmap(start_episode, (None, None, 0))(task, policy, jax.random.split(start_key,
                                                                                        config.episodes_per_update))
        rule_states = jax.vmap(rule.init, (0, None))(jax.random.split(rule_key, config.episodes_per_update),
                                                     state.params)

        def segment_step(carry, key):
            params, opt_state, streams, rule_states = carry
            rollout_key, update_key = jax.random.split(key)
            policy = agent_policy(task, agent, params)
            keys = jax.random.split(rollout_key, config.episodes_per_update)
            new_streams, records = jax.vmap(lambda s, k: rollout(task, policy, s, k, segment))(streams, keys)
            trajectories = jax.vmap(lambda c, r, f: to_trajectory(task, c, r, f))(
                streams.policy_state, records, new_streams.step_input)
            updates, rule_states, metrics = mean_update(
                rule, params, rule_states, trajectories, jax.random.split(update_key, config.episodes_per_update),
                chunk=config.update_chunk)
            steps, opt_state = optimizer.update(updates, opt_state, params)
            params = optax.apply_updates(params, steps)
            return (params, opt_state, new_streams, rule_states), (records, jax.tree.map(jnp.mean, metrics))

        (params, opt_state, _, _), (records, metrics) = jax.lax.scan(
            segment_step, (state.params, state.opt_state, streams, rule_states),
            jax.random.split(segments_key, num_segments))
        episode_metrics = {
            "episode_reward": jnp.sum(records.reward) / config.episodes_per_update,
            **{f"episode_{k}": jnp.sum(v) / config.episodes_per_update for k, v in records.info.items()},
            **{k: jnp.mean(v) for k, v in metrics.items()},
        }
        return RLTrainState(params, opt_state, key, state.update + 1), episode_metrics

    def run(state: RLTrainState, hparams: Hparams, num_logs: int):
        def log_period(state, _):
            state, metrics = jax.lax.scan(lambda s, _: train_step(s, hparams), state, None, length=config.log_every)
            return state, {"update": state.update, **jax.tree.map(jnp.mean, metrics)}

        return jax.lax.scan(log_period, state, None, length=num_logs)

    return init, run


def evaluate_policy(task: MetaTask, policy: Policy, key: PRNGKey, num_episodes: int) -> StepRecord:
    """Run ``num_episodes`` fresh episodes of ``policy`` (frozen): records [episodes, episode_length, ...].

    The same ``key`` gives every policy the same task instances (common random numbers)."""

    def episode(key):
        start_key, run_key = jax.random.split(key)
        stream = start_episode(task, policy, start_key)
        return rollout(task, policy, stream, run_key, task.episode_length)[1]

    return jax.vmap(episode)(jax.random.split(key, num_episodes))
