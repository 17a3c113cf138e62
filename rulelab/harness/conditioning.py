"""The TD model of phasic dopamine in Pavlovian conditioning (Schultz, Dayan & Montague 1997, Science 275:1593).

A linear critic on a complete-serial-compound representation (tasks/rl/conditioning.py) is trained online, one
update per time step, by the ``neuromodulated_td`` rule over a schedule of trials: acquisition (reward always
delivered), then omission probes and an extinction block (reward withheld). Every trial's δ_t is recorded, so the
prediction error can be seen moving from the reward to the CS over acquisition, dipping below zero at the
expected reward time on omission, and fading at the CS during extinction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from rulelab.harness.results import write_json, write_parquet
from rulelab.harness.rl import EpisodeStream, agent_policy, first_step_input, rollout, to_trajectory
from rulelab.harness.rl_plots import plot_conditioning
from rulelab.nets.recurrent import linear_agent
from rulelab.registry import make_rule
from rulelab.tasks.rl.conditioning import ConditioningParams, conditioning_task


@dataclasses.dataclass(frozen=True)
class ConditioningConfig:
    acquisition_trials: int = 300
    omission_trials: int = 1  # probes right after acquisition
    extinction_trials: int = 150
    learning_rate: float = 0.2
    discount: float = 1.0
    trace_decay: float = 0.0  # TD(0): the error moves back one time step per trial, as in the 1997 model
    reward_size: float = 1.0
    trial_length: int = 25
    cs_time: int = 5
    reward_delay: int = 10

    @property
    def schedule(self) -> np.ndarray:
        """[trials] reward probability of each trial."""
        return np.concatenate([np.ones(self.acquisition_trials), np.zeros(self.omission_trials),
                               np.zeros(self.extinction_trials)]).astype(np.float32)

    @property
    def phases(self) -> list[str]:
        return (["acquisition"] * self.acquisition_trials + ["omission"] * self.omission_trials
                + ["extinction"] * self.extinction_trials)


class ConditioningResult(NamedTuple):
    td_errors: np.ndarray  # [trials, transitions]; column t is δ of the step that enters time t + 1
    values: np.ndarray  # [trials, transitions] V(x_t) before each trial's updates
    weights: np.ndarray  # [features] final critic weights
    cs_index: int  # column of the step entering the CS
    reward_index: int  # column of the step entering the reward time


def run_conditioning(config: ConditioningConfig = ConditioningConfig(), seed: int = 0) -> ConditioningResult:
    """Train the critic online through the trial schedule and record δ for every time step of every trial."""
    task = conditioning_task(trial_length=config.trial_length, cs_time=config.cs_time,
                             reward_delay=config.reward_delay)
    agent = linear_agent(task.num_inputs, 1)
    rule = make_rule("neuromodulated_td", agent, discount=config.discount, trace_decay=config.trace_decay)

    def trial(params, inputs):
        reward_probability, trial_key = inputs
        env_params = ConditioningParams(reward_probability=reward_probability, reward_size=config.reward_size,
                                        max_steps_in_episode=config.trial_length)
        reset_key, steps_key = jax.random.split(trial_key)
        observation, env_state = task.env.reset(reset_key, env_params)
        step_input, rule_state = first_step_input(observation), rule.init(reset_key, params)

        def step(carry, key):
            params, env_state, step_input, rule_state = carry
            rollout_key, update_key = jax.random.split(key)
            policy = agent_policy(task, agent, params)
            stream = EpisodeStream(env_state, env_params, step_input, ())
            stream, records = rollout(task, policy, stream, rollout_key, 1)
            trajectory = to_trajectory(task, (), records, stream.step_input)
            updates, rule_state, metrics = rule.update(params, rule_state, trajectory, key=update_key)
            params = jax.tree.map(lambda p, u: p - config.learning_rate * u, params, updates)
            return (params, stream.env_state, stream.step_input, rule_state), (metrics["td_error"][0],
                                                                               metrics["value"][0])

        (params, *_), (deltas, values) = jax.lax.scan(
            step, (params, env_state, step_input, rule_state), jax.random.split(steps_key, task.episode_length))
        return params, (deltas, values)

    schedule = jnp.asarray(config.schedule)
    keys = jax.random.split(jax.random.key(seed), len(schedule))
    params = agent.init(jax.random.key(seed))
    params, (deltas, values) = jax.jit(lambda p: jax.lax.scan(trial, p, (schedule, keys)))(params)
    return ConditioningResult(np.asarray(deltas), np.asarray(values), np.asarray(params["value"]["kernel"]),
                              config.cs_time - 1, config.cs_time + config.reward_delay - 1)


def conditioning_summary(result: ConditioningResult, config: ConditioningConfig) -> dict[str, float]:
    """δ at the CS and at the reward on the last acquisition trial, and at the reward time on the first omission."""
    last = config.acquisition_trials - 1
    omission = config.acquisition_trials
    return {
        "delta_at_cs_final": float(result.td_errors[last, result.cs_index]),
        "delta_at_reward_final": float(result.td_errors[last, result.reward_index]),
        "delta_at_omission": float(result.td_errors[omission, result.reward_index]) if config.omission_trials
        else float("nan"),
    }


def write_conditioning(config: ConditioningConfig, out_dir, seed: int = 0) -> dict[str, float]:
    """Run the schedule; write td_errors.parquet (trial × time tidy rows), td_errors.png and summary.json.

    The rows mark the CS and reward time steps (``is_cs``, ``is_reward``), so ``rulelab plot`` can redraw the figure
    from the Parquet file alone (``redraw_conditioning``)."""
    result = run_conditioning(config, seed)
    trials, steps = np.meshgrid(np.arange(result.td_errors.shape[0]), np.arange(result.td_errors.shape[1]),
                                indexing="ij")
    phases = np.asarray(config.phases)
    frame = pd.DataFrame({"trial": trials.ravel(), "phase": phases[trials.ravel()], "time_step": steps.ravel() + 1,
                          "td_error": result.td_errors.ravel(), "value": result.values.ravel(),
                          "is_cs": steps.ravel() == result.cs_index, "is_reward": steps.ravel() == result.reward_index})
    out = Path(out_dir)
    write_parquet(frame, out / "td_errors.parquet")
    plot_conditioning(result.td_errors, config.phases, result.cs_index, result.reward_index, out / "td_errors.png")
    summary = conditioning_summary(result, config)
    write_json(summary, out / "summary.json")
    return summary


def redraw_conditioning(frame: pd.DataFrame, path) -> Path:
    """``td_errors.png`` again from the tidy rows ``write_conditioning`` wrote."""
    frame = frame.sort_values(["trial", "time_step"])
    td_errors = frame.pivot(index="trial", columns="time_step", values="td_error").to_numpy()
    first = frame[frame["trial"] == frame["trial"].min()]
    phases = frame.groupby("trial")["phase"].first().tolist()
    cs_index = int(first.loc[first["is_cs"], "time_step"].iloc[0]) - 1
    reward_index = int(first.loc[first["is_reward"], "time_step"].iloc[0]) - 1
    return plot_conditioning(td_errors, phases, cs_index, reward_index, path)
