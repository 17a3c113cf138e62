"""A sweep's run table: every (compiled group, hyperparameter setting, seed), each named by a content hash.

A *group* is everything structural about a run (rule, static options, widths, activation): one compiled program.
A *run* is one group, one value per traced hyperparameter and one seed. Its ``run_id`` hashes the canonical
description of what it computes (data set, rule with every hyperparameter including defaults, network, training
settings, seed), never how it is executed, so a rerun, a grown sweep or a differently chunked sweep recognises
runs it has already finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, NamedTuple, Sequence

from rulelab.harness.train import TrainConfig, default_hparams
from rulelab.registry import rule_hyperparameters
from rulelab.sweep.config import LEARNING_RATE, SweepConfig, SweepConfigError, TrainingSpec, rule_settings


class Group(NamedTuple):
    """The structural part of a run: runs of one group share one compiled program."""

    rule: str
    options: tuple[tuple[str, Any], ...]  # sorted static rule options
    hidden: tuple[int, ...]
    activation: str

    def train_config(self, training: TrainingSpec) -> TrainConfig:
        return TrainConfig(rule=self.rule, rule_options=self.options, hidden=self.hidden,
                           activation=self.activation, **dataclasses.asdict(training))

    @property
    def label(self) -> str:
        options = "".join(f" {k}={v}" for k, v in self.options)
        return f"{self.rule}{options} [{hidden_label(self.hidden)}] {self.activation}"


class Run(NamedTuple):
    run_id: str
    group: Group
    hparams: tuple[tuple[str, float], ...]  # every traced hyperparameter of the group, sorted by name
    seed: int


def hidden_label(hidden: Sequence[int]) -> str:
    """``(128, 128)`` -> ``"128-128"``; no hidden layer -> ``"none"``."""
    return "-".join(map(str, hidden)) or "none"


def stable_hash(description: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable description with sorted keys (anything else by ``repr``)."""
    text = json.dumps(description, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def run_description(config: SweepConfig, group: Group, hparams: dict[str, float], seed: int) -> dict[str, Any]:
    """The canonical description of one run: what it computes, with every rule default made explicit."""
    rule_values = {**rule_hyperparameters(group.rule), **dict(group.options)}
    rule_values.update({k: v for k, v in hparams.items() if k != LEARNING_RATE})
    return {
        "dataset": config.dataset,
        "rule": group.rule,
        "rule_hyperparameters": rule_values,
        "network": {"hidden": list(group.hidden), "activation": group.activation},
        "training": dataclasses.asdict(config.training),
        LEARNING_RATE: hparams[LEARNING_RATE],
        "seed": seed,
        "base_seed": config.base_seed,
    }


def _complete_settings(config: SweepConfig, group: Group, settings: list[dict[str, float]]) -> list[dict[str, float]]:
    """Give every setting of a group the same traced names, filling absent ones with their defaults."""
    defaults = {LEARNING_RATE: default_hparams(group.train_config(config.training))[LEARNING_RATE],
                **rule_hyperparameters(group.rule)}
    names = {LEARNING_RATE} | {k for s in settings for k in s}
    for name in sorted(names):
        if any(name not in s for s in settings) and not isinstance(defaults.get(name), (int, float)):
            raise SweepConfigError(f"rule {group.rule!r}: {name!r} has no numeric default; "
                                   f"give it in every grid or point")
    return [{n: float(s.get(n, defaults.get(n))) for n in sorted(names)} for s in settings]


def plan_sweep(config: SweepConfig) -> list[Run]:
    """Every distinct run of a (validated) sweep, group by group, settings in grid order, seeds innermost."""
    runs: dict[str, Run] = {}
    for spec in config.rules:
        settings = rule_settings(config, spec)
        for hidden in config.network.hidden:
            for activation in config.network.activation:
                group = Group(spec.name, tuple(sorted(spec.options.items())), tuple(hidden), activation)
                for setting in _complete_settings(config, group, settings):
                    for seed in config.seeds:
                        run_id = stable_hash(run_description(config, group, setting, seed))
                        runs.setdefault(run_id, Run(run_id, group, tuple(setting.items()), seed))
    return list(runs.values())


def group_runs(runs: Sequence[Run]) -> dict[Group, list[Run]]:
    """Runs by compiled group, in first-appearance order."""
    groups: dict[Group, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return groups


def make_chunks(runs: Sequence[Run], runs_per_chunk: int) -> dict[Group, list[list[Run]]]:
    """Each group's runs in consecutive chunks of at most ``runs_per_chunk`` (a chunk never mixes groups)."""
    return {group: [members[i:i + runs_per_chunk] for i in range(0, len(members), runs_per_chunk)]
            for group, members in group_runs(runs).items()}


def chunk_id(chunk: Sequence[Run]) -> str:
    """Names a chunk by its runs, so an interrupted chunk is recognised (with its checkpoint) on the next try."""
    return stable_hash(sorted(run.run_id for run in chunk))
