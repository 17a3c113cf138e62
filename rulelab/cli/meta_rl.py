"""``rulelab meta-rl``: train meta-RL learners across episodes, freeze them, compare with reference policies."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from rulelab.cli.arguments import check_choices, name_list, positive_float, positive_int

DEFAULT_LEARNERS = ("meta_a2c", "neuromodulated_td")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rulelab.tasks.rl import META_TASKS

    parser.add_argument("--task", default="bandit-independent", help=f"one of {', '.join(META_TASKS)}")
    parser.add_argument("--learners", type=name_list, default=DEFAULT_LEARNERS,
                        help=f"comma-separated learners (default: {','.join(DEFAULT_LEARNERS)})")
    parser.add_argument("--seeds", type=positive_int, default=4, help="independently trained copies (vmapped)")
    parser.add_argument("--train-episodes", type=positive_int, default=20_000, help="training episodes per seed")
    parser.add_argument("--episodes-per-update", type=positive_int, default=32)
    parser.add_argument("--learning-rate", type=positive_float, default=None,
                        help="override every chosen learner's learning rate (default: each learner's own)")
    parser.add_argument("--eval-episodes", type=positive_int, default=1000, help="frozen evaluation episodes")
    parser.add_argument("--seed", type=int, default=0, help="base random seed")
    parser.add_argument("--out", default="runs/meta_rl", help="output folder (default: runs/meta_rl)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress lines")


def run(args: argparse.Namespace) -> int:
    from rulelab.harness.meta_rl import LEARNERS, run_meta_rl
    from rulelab.tasks.rl import META_TASKS, make_meta_task

    check_choices("task", [args.task], META_TASKS)
    check_choices("learner", args.learners, LEARNERS)

    def progress(name, done, total):
        print(f"  {name}: {done}/{total}", file=sys.stderr, flush=True)

    overrides = {}
    if args.learning_rate is not None:
        overrides = {name: dataclasses.replace(LEARNERS[name], hparams={**LEARNERS[name].hparams,
                                                                        "learning_rate": args.learning_rate})
                     for name in args.learners}
    summary = run_meta_rl(make_meta_task(args.task), args.learners, num_seeds=args.seeds, learners=overrides,
                          train_episodes=args.train_episodes, out_dir=args.out, eval_episodes=args.eval_episodes,
                          episodes_per_update=args.episodes_per_update, seed=args.seed,
                          progress=None if args.no_progress else progress)
    print(f"{args.task}: expected cumulative regret over an episode, frozen policies, {args.eval_episodes} "
          f"evaluation episodes")
    for name, row in summary["learners"].items():
        print(f"  {name:28s} {row['cumulative_regret_mean']:7.2f} ± {row['cumulative_regret_std']:.2f} "
              f"({row['seeds']} seeds)")
    for name, value in summary["reference"].items():
        print(f"  {name:28s} {value:7.2f} (reference)")
    print(f"results: {args.out}/summary.json, results.parquet, cumulative_regret.png")
    return 0
