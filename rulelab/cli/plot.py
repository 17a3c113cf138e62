"""``rulelab plot RESULTS_DIR``: redraw every standard figure from a results folder as PNG."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_dir", help="a folder written by rulelab sweep, compare, continual, meta-rl, "
                                            "conditioning, or a meta-learning experiment")


def run(args: argparse.Namespace) -> int:
    from rulelab.cli.arguments import CommandLineError
    from rulelab.sweep.figures import NothingToPlotError, redraw_figures

    try:
        paths = redraw_figures(args.results_dir)
    except NothingToPlotError as error:
        raise CommandLineError(str(error)) from None
    for path in paths:
        print(path)
    return 0
