"""Sweep one hyperparameter of a continual-learning method on a validation split (one vmapped program).

    python experiments/continual_sweep.py --suite split-digits --scenario domain --method ewc \
        --name ewc_strength --values 1,10,100,1000,10000,100000
"""

from __future__ import annotations

import argparse

from rulelab.harness.continual import ContinualConfig, run_continual
from rulelab.harness.sharding import use_host_device_per_core
from rulelab.tasks.continual import load_continual_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="split-digits")
    parser.add_argument("--scenario", default="domain")
    parser.add_argument("--method", default="ewc")
    parser.add_argument("--name", default="ewc_strength", help="a float hyperparameter of the method")
    parser.add_argument("--values", default="1,10,100,1000,10000,100000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps-per-task", type=int, default=200)
    parser.add_argument("--hidden", default="100,100")
    args = parser.parse_args()

    suite = load_continual_suite(args.suite, holdout="validation")
    config = ContinualConfig(hidden=tuple(int(h) for h in args.hidden.split(",")), steps_per_task=args.steps_per_task)
    values = [float(v) for v in args.values.split(",")]
    result = run_continual(suite, args.scenario, [args.method], config=config, hparams={args.name: values},
                           num_seeds=args.seeds, base_seed=1000)
    table = result.runs.groupby(args.name)[["average_accuracy", "forgetting"]].agg(["mean", "std"])
    print(f"{args.suite}, {args.scenario}-incremental, {args.method}, validation split, {args.seeds} seeds")
    print(table.round(3).to_string())


if __name__ == "__main__":
    use_host_device_per_core()  # one host device per CPU core, before JAX starts
    main()
