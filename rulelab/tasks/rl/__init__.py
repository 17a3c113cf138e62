"""RL and meta-RL environments (gymnax ``Environment`` API) and the named task distributions built on them."""

from __future__ import annotations

from typing import Callable

from rulelab.tasks.rl.bandits import dependent_bandit_task, independent_bandit_task
from rulelab.tasks.rl.harlow import harlow_task
from rulelab.tasks.rl.meta_task import MetaTask, fixed_params
from rulelab.tasks.rl.two_step import two_step_task

META_TASKS: dict[str, Callable[[], MetaTask]] = {
    "bandit-independent": independent_bandit_task,
    "bandit-easy": lambda: dependent_bandit_task("easy"),
    "bandit-medium": lambda: dependent_bandit_task("medium"),
    "bandit-hard": lambda: dependent_bandit_task("hard"),
    "two-step": two_step_task,
    "harlow": harlow_task,
}


def make_meta_task(name: str) -> MetaTask:
    if name not in META_TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(META_TASKS)}")
    return META_TASKS[name]()


__all__ = ["META_TASKS", "MetaTask", "fixed_params", "make_meta_task"]
