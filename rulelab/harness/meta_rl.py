"""Meta-RL experiments: train learners across episodes, freeze them, evaluate on new task instances.

A learner is an agent plus the rule that trains it across episodes:

- ``meta_a2c``: Wang et al.'s LSTM (48 units) trained by A2C with backprop through time (Adam).
- ``backpropamine``: a recurrent net with neuromodulated Hebbian plastic weights (rules/backpropamine.py),
  meta-trained by the same A2C.
- ``neuromodulated_td``: the same LSTM trained online, every step, by the three-factor TD(λ) rule (SGD).
- ``neuromodulated_td_readout``: as above with the LSTM frozen at its random initialisation (readouts only).

Evaluation runs the frozen policy on fresh episodes, with the same task instances for every learner and every
reference bandit policy (common random numbers), and reports the expected cumulative regret.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from rulelab.harness.a2c import a2c
from rulelab.harness.bandit_policies import selected_reference_policy
from rulelab.harness.bayes_optimal_bandit import bayes_optimal_policy
from rulelab.harness.bayes_optimal_bandit import solve as solve_bayes_optimal
from rulelab.harness.results import write_json, write_parquet
from rulelab.harness.rl import RLTrainConfig, agent_policy, evaluate_policy, make_rl_train
from rulelab.harness.rl_plots import plot_cumulative_regret, plot_stay_probabilities, plot_training_curves
from rulelab.nets.recurrent import Agent, lstm_agent
from rulelab.registry import make_rule
from rulelab.rules.backpropamine import backpropamine_agent
from rulelab.tasks.rl.meta_task import MetaTask

REFERENCE_NAMES = ("random", "greedy", "ucb", "thompson")
# Tasks whose arms are independent Bernoulli with uniform priors, where the Bayes-optimal policy is solved exactly
BAYES_OPTIMAL_TASKS = ("bandit-independent",)


@dataclasses.dataclass(frozen=True)
class Learner:
    make_agent: Callable[[MetaTask], Agent]
    make_rule: Callable[..., Any]  # (agent, **rule_hparams) -> LearningRule
    hparams: dict[str, float]  # "learning_rate" for the optimizer, the rest for the rule
    optimizer: str = "adam"
    segment_length: int | None = None  # None: whole episodes (BPTT); 1: online
    anneal_to_zero: tuple[str, ...] = ()
    update_chunk: int | None = None  # episodes per vmapped piece of the update (RLTrainConfig.update_chunk)


def _lstm(task: MetaTask) -> Agent:
    return lstm_agent(task.num_inputs, task.num_actions, hidden=48)


def _plastic(task: MetaTask) -> Agent:
    return backpropamine_agent(task.num_inputs, task.num_actions, hidden=48)


A2C_HPARAMS = {"learning_rate": 1e-3, "discount": 0.9, "value_coef": 0.05, "entropy_coef": 0.05}
TD_HPARAMS = {"learning_rate": 0.05, "discount": 0.9, "trace_decay": 0.8, "entropy_coef": 0.01}

LEARNERS: dict[str, Learner] = {
    "meta_a2c": Learner(_lstm, a2c, A2C_HPARAMS, anneal_to_zero=("entropy_coef",)),
    "backpropamine": Learner(_plastic, a2c, A2C_HPARAMS, anneal_to_zero=("entropy_coef",), update_chunk=4),
    "neuromodulated_td": Learner(_lstm, partial(make_rule, "neuromodulated_td"), TD_HPARAMS, optimizer="sgd",
                                 segment_length=1),
    "neuromodulated_td_readout": Learner(_lstm, partial(make_rule, "neuromodulated_td", trainable="readouts"),
                                         TD_HPARAMS, optimizer="sgd", segment_length=1),
}


def train_learner(task: MetaTask, learner: Learner, *, num_seeds: int, train_episodes: int,
                  episodes_per_update: int = 32, seed: int = 0, num_logs: int = 10,
                  progress: Callable[[int, int], None] | None = None):
    """Train ``num_seeds`` independent copies (vmapped). Returns (agent, params [seeds, ...], curves dict of
    [logs, seeds] arrays). ``train_episodes`` is rounded up to whole logging periods of whole batches."""
    updates = max(1, -(-train_episodes // episodes_per_update))
    log_every = max(1, -(-updates // num_logs))
    config = RLTrainConfig(num_updates=log_every * num_logs, episodes_per_update=episodes_per_update,
                           segment_length=learner.segment_length, optimizer=learner.optimizer,
                           anneal_to_zero=learner.anneal_to_zero, log_every=log_every,
                           update_chunk=learner.update_chunk)
    agent = learner.make_agent(task)
    init, run = make_rl_train(task, agent, learner.make_rule, config)
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in learner.hparams.items()}
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    state = jax.jit(jax.vmap(init, (0, None)))(keys, hparams)
    run_period = jax.jit(jax.vmap(lambda s, h: run(s, h, 1), (0, None)))
    curves = []
    for index in range(num_logs):
        state, metrics = run_period(state, hparams)
        curves.append(jax.tree.map(lambda m: np.asarray(m)[:, 0], metrics))
        if progress is not None:
            progress(index + 1, num_logs)
    curves = {k: np.stack([c[k] for c in curves]) for k in curves[0]}
    curves["episodes"] = curves["update"] * episodes_per_update
    return agent, state.params, curves


def evaluate_learner(task: MetaTask, agent: Agent, params, key, num_episodes: int):
    """Frozen evaluation of every seed's params (vmapped) on the same episodes: records [seeds, episodes, T]."""
    return jax.jit(jax.vmap(lambda p: evaluate_policy(task, agent_policy(task, agent, p), key, num_episodes)))(
        params)


def evaluate_references(task: MetaTask, names: tuple[str, ...], key, num_episodes: int):
    """Reference bandit policies on the same episodes, in one compiled program: records [policies, episodes, T]."""
    def evaluate(index):
        return evaluate_policy(task, selected_reference_policy(names, index, task.num_actions), key, num_episodes)

    return jax.jit(jax.vmap(evaluate))(jnp.arange(len(names)))


def cumulative_regret(records) -> np.ndarray:
    """[seeds, T] expected cumulative regret over trials, averaged over evaluation episodes."""
    return np.cumsum(np.asarray(records.info["regret"]).mean(axis=1), axis=-1)


def stay_probabilities(actions: np.ndarray, rewards: np.ndarray, common: np.ndarray) -> np.ndarray:
    """Two-step analysis (Daw et al. 2011; Wang et al. 2018 Fig. 4): P(repeat the first-stage action) after each
    (rewarded, common) combination. Inputs [..., T]; output [2 rewarded (no, yes), 2 common (rare, common)]."""
    stay = (actions[..., 1:] == actions[..., :-1]).ravel()
    rewarded = (rewards[..., :-1] > 0).ravel()
    was_common = (common[..., :-1] > 0).ravel()
    table = np.full((2, 2), np.nan)
    for r in (0, 1):
        for c in (0, 1):
            chosen = (rewarded == r) & (was_common == c)
            if chosen.any():
                table[r, c] = stay[chosen].mean()
    return table


def regret_rows(records, policy: str, kind: str) -> pd.DataFrame:
    """Tidy rows (policy, kind, seed, trial, regret, cumulative_regret) from evaluation records."""
    curve = cumulative_regret(records)  # [seeds, T]
    seeds, trials = np.meshgrid(np.arange(curve.shape[0]), np.arange(curve.shape[1]), indexing="ij")
    per_trial = np.diff(curve, axis=1, prepend=0.0)
    return pd.DataFrame({"policy": policy, "kind": kind, "seed": seeds.ravel(), "trial": trials.ravel(),
                         "regret": per_trial.ravel(), "cumulative_regret": curve.ravel()})


def stay_rows(records, policy: str) -> pd.DataFrame:
    rows = []
    for seed in range(np.shape(records.action)[0]):
        table = stay_probabilities(np.asarray(records.action[seed]), np.asarray(records.reward[seed]),
                                   np.asarray(records.info["common_transition"][seed]))
        rows += [{"policy": policy, "seed": seed, "rewarded": r, "common": c, "stay_probability": table[r, c]}
                 for r in (0, 1) for c in (0, 1)]
    return pd.DataFrame(rows)


def run_meta_rl(task: MetaTask, learner_names, *, num_seeds: int, train_episodes: int | dict[str, int], out_dir,
                eval_episodes: int = 1000, episodes_per_update: int = 32, seed: int = 0, progress=None,
                learners: dict[str, Learner] | None = None) -> dict:
    """Train each learner (seeds vmapped), evaluate it frozen against the reference policies on the same
    episodes, and write results.parquet, training.parquet, PNG plots, summary.json and details.json.
    ``train_episodes`` may give each learner its own budget (a dict by learner name); ``learners`` may replace
    entries of ``LEARNERS`` (e.g. other hyperparameters)."""
    table = {**LEARNERS, **(learners or {})}
    budgets = train_episodes if isinstance(train_episodes, dict) else dict.fromkeys(learner_names, train_episodes)
    eval_key = jax.random.key(seed + 10_000)  # disjoint from training keys; shared by every policy
    regret_frames, stay_frames, training_frames, results, details = [], [], [], {}, {"learners": {}}
    two_step = "common_transition" in task.info_keys
    for name in learner_names:
        learner = table[name]
        report = (lambda i, n, name=name: progress(name, i, n)) if progress else None
        agent, params, curves = train_learner(task, learner, num_seeds=num_seeds, train_episodes=budgets[name],
                                              episodes_per_update=episodes_per_update, seed=seed, progress=report)
        records = evaluate_learner(task, agent, params, eval_key, eval_episodes)
        regret_frames.append(regret_rows(records, name, "learner"))
        if two_step:
            stay_frames.append(stay_rows(records, name))
        logs, seeds = curves["update"].shape
        training_frames.append(pd.DataFrame({"learner": name, "seed": np.tile(np.arange(seeds), logs),
                                             **{k: v.ravel() for k, v in curves.items()}}))
        final = cumulative_regret(records)[:, -1]
        results[name] = {"cumulative_regret_mean": float(final.mean()), "cumulative_regret_std": float(final.std()),
                          "seeds": int(num_seeds)}
        details["learners"][name] = {"per_seed_regret": final.tolist(), "hyperparameters": learner.hparams,
                                     "optimizer": learner.optimizer, "train_episodes": int(curves["episodes"][-1, 0])}
    reference = {}
    all_records = evaluate_references(task, REFERENCE_NAMES, eval_key, eval_episodes)
    for index, name in enumerate(REFERENCE_NAMES):
        records = jax.tree.map(lambda x: np.asarray(x)[index][None], all_records)
        regret_frames.append(regret_rows(records, name, "reference"))
        if two_step:
            stay_frames.append(stay_rows(records, name))
        reference[name] = float(cumulative_regret(records)[0, -1])
    if task.name in BAYES_OPTIMAL_TASKS:  # independent Beta(1, 1) arms: the exact optimum is computable
        solution = solve_bayes_optimal(task.episode_length)
        records = jax.jit(lambda key: evaluate_policy(task, bayes_optimal_policy(solution), key, eval_episodes))(
            eval_key)
        records = jax.tree.map(lambda x: np.asarray(x)[None], records)
        regret_frames.append(regret_rows(records, "bayes_optimal", "reference"))
        reference["bayes_optimal"] = float(cumulative_regret(records)[0, -1])
        details["bayes_optimal_exact_regret"] = solution.expected_regret
    summary = {"task": task.name, "learners": results,
               "reference": {k: reference[k] for k in ("random", "ucb", "thompson")}}
    details.update(reference_all=reference, eval_episodes=eval_episodes, episodes_per_update=episodes_per_update,
                   seed=seed, episode_length=task.episode_length)
    out = Path(out_dir)
    regrets = pd.concat(regret_frames, ignore_index=True)
    write_parquet(regrets, out / "results.parquet")
    write_parquet(pd.concat(training_frames, ignore_index=True), out / "training.parquet")
    plot_cumulative_regret(regrets, out / "cumulative_regret.png", title=f"{task.name}: frozen learners vs references")
    plot_training_curves(pd.concat(training_frames, ignore_index=True), out / "training.png", title=task.name)
    if two_step:
        stays = pd.concat(stay_frames, ignore_index=True)
        write_parquet(stays, out / "stay_probabilities.parquet")
        plot_stay_probabilities(stays, out / "stay_probabilities.png")
        details["stay_probabilities"] = {
            policy: {f"{'rewarded' if r else 'unrewarded'}_{'common' if c else 'rare'}":
                     float(group[(group.rewarded == r) & (group.common == c)].stay_probability.mean())
                     for r in (1, 0) for c in (1, 0)}
            for policy, group in stays.groupby("policy", sort=False)}
    write_json(summary, out / "summary.json")
    write_json(details, out / "details.json")
    return summary
