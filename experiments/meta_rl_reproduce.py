"""Reproduce the meta-RL numbers of docs/meta_rl.md: every task, frozen learners against reference policies.

    python experiments/meta_rl_reproduce.py --out runs/meta_rl_reproduction            # all tasks (hours on 2 CPUs)
    python experiments/meta_rl_reproduce.py --tasks bandit-independent --seeds 2

Per task it calls ``rulelab.harness.meta_rl.run_meta_rl`` (the same code as ``rulelab meta-rl``) with the
training budgets below, writing one folder per task, and prints one table at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from rulelab.harness.meta_rl import LEARNERS, run_meta_rl
from rulelab.tasks.rl import META_TASKS, make_meta_task

# training episodes per seed: BPTT-A2C needs 2–5·10⁵ episodes on bandits (10⁵ left it above Thompson on independent
# arms and one of two seeds at chance on medium after 2·10⁴); online TD converges within ~2·10⁴
BUDGETS = {
    "bandit-independent": {"meta_a2c": 500_000, "neuromodulated_td": 20_000, "neuromodulated_td_readout": 20_000},
    "two-step": {"meta_a2c": 50_000, "neuromodulated_td": 20_000},
    "harlow": {"meta_a2c": 300_000, "backpropamine": 150_000, "neuromodulated_td": 20_000},
    "bandit-easy": {"meta_a2c": 200_000, "neuromodulated_td": 10_000},
    "bandit-medium": {"meta_a2c": 200_000, "neuromodulated_td": 10_000},
    "bandit-hard": {"meta_a2c": 200_000, "neuromodulated_td": 10_000},
}

# Harlow: A2C learns only with a larger step and batch (at Adam 1e-3, 32 episodes per update and 5·10⁴ episodes it
# stays at chance); 6-trial episodes make the larger budget cheap
HARLOW_A2C = {"learning_rate": 3e-3}
EPISODES_PER_UPDATE = {"harlow": 128}


def learner_overrides(task_name: str) -> dict:
    if task_name != "harlow":
        return {}
    return {name: dataclasses.replace(LEARNERS[name], hparams={**LEARNERS[name].hparams, **HARLOW_A2C})
            for name in ("meta_a2c", "backpropamine")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(BUDGETS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every training budget")
    parser.add_argument("--out", default="runs/meta_rl_reproduction")
    args = parser.parse_args()
    summaries = {}
    for name in args.tasks.split(","):
        if name not in META_TASKS:
            print(f"unknown task {name!r}; valid: {', '.join(META_TASKS)}", file=sys.stderr)
            return 2
        budgets = {k: max(1, int(v * args.scale)) for k, v in BUDGETS[name].items()}
        start = time.perf_counter()
        summaries[name] = run_meta_rl(make_meta_task(name), list(budgets), num_seeds=args.seeds,
                                      train_episodes=budgets, out_dir=Path(args.out) / name,
                                      eval_episodes=args.eval_episodes, learners=learner_overrides(name),
                                      episodes_per_update=EPISODES_PER_UPDATE.get(name, 32))
        print(f"{name}: {time.perf_counter() - start:.0f} s", json.dumps(summaries[name]), flush=True)
    for name, summary in summaries.items():
        learners = ", ".join(f"{k} {v['cumulative_regret_mean']:.2f}±{v['cumulative_regret_std']:.2f}"
                             for k, v in summary["learners"].items())
        references = ", ".join(f"{k} {v:.2f}" for k, v in summary["reference"].items())
        print(f"{name:20s} {learners} | {references}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
