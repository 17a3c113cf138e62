"""``rulelab sweep CONFIG``: run (or resume) a sweep described by a TOML file into a results folder."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="sweep TOML file (see docs/workbench.md and experiments/configs/)")
    parser.add_argument("--out", default=None, help="results folder (default: runs/<config name>); rerunning into "
                                                    "the same folder resumes, skipping finished runs")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config and every rule, print the run table's size, train nothing")
    parser.add_argument("--slice", default=None, metavar="I/N",
                        help="train only slice I of N of the run table (default: $RULELAB_SLICE or a SLURM job "
                             "array's task); processes share --out and the last to finish writes the summary")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from rulelab.cli.arguments import CommandLineError
    from rulelab.harness.slicing import SliceSpec, slice_from_environment
    from rulelab.sweep.checks import RuleCheckError
    from rulelab.sweep.config import SweepConfigError, load_config
    from rulelab.sweep.plan import group_runs
    from rulelab.sweep.runner import prepare_sweep, run_sweep
    from rulelab.sweep.summary import format_summary

    def status(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        slice_spec = SliceSpec.parse(args.slice) if args.slice is not None else slice_from_environment()
    except ValueError as error:
        raise CommandLineError(f"--slice: {error}") from None
    try:
        config = load_config(args.config)
        out = args.out or f"runs/{config.name}"
        if args.dry_run:
            config, runs, _ = prepare_sweep(config)
            groups = group_runs(runs)
            for group, members in groups.items():
                print(f"{group.label}: {len(members)} runs")
            print(f"{config.name}: {len(runs)} runs in {len(groups)} compiled groups; config and rules check out")
            return 0
        result = run_sweep(config, out, progress=not args.no_progress, log=status, slice_spec=slice_spec)
    except (SweepConfigError, RuleCheckError) as error:
        raise CommandLineError(str(error)) from None
    if result.summary:
        print(format_summary(result.summary))
    print(f"trained {result.trained} runs, reused {result.reused} finished ones")
    print(f"results: {out}/chunks/*.parquet (rulelab.sweep.load_results), {out}/summary.json, "
          f"{out}/learning_curves.png")
    return 0
