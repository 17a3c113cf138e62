"""``rulelab conditioning``: the TD model of dopamine on Pavlovian conditioning with a serial-compound stimulus."""

from __future__ import annotations

import argparse

from rulelab.cli.arguments import CommandLineError, positive_float, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--acquisition-trials", type=positive_int, default=300)
    parser.add_argument("--extinction-trials", type=positive_int, default=150)
    parser.add_argument("--learning-rate", type=positive_float, default=0.2)
    parser.add_argument("--trace-decay", type=float, default=0.0, help="λ in [0, 1] (default 0: TD(0))")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/conditioning", help="output folder (default: runs/conditioning)")


def run(args: argparse.Namespace) -> int:
    from rulelab.harness.conditioning import ConditioningConfig, write_conditioning

    if not 0.0 <= args.trace_decay <= 1.0:
        raise CommandLineError(f"--trace-decay must be in [0, 1], got {args.trace_decay}")
    config = ConditioningConfig(acquisition_trials=args.acquisition_trials, extinction_trials=args.extinction_trials,
                                learning_rate=args.learning_rate, trace_decay=args.trace_decay)
    summary = write_conditioning(config, args.out, seed=args.seed)
    for key, value in summary.items():
        print(f"  {key:24s} {value:+.3f}")
    print(f"results: {args.out}/summary.json, td_errors.parquet, td_errors.png")
    return 0
