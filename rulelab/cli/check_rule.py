"""``rulelab check-rule NAME``: run the conformance checks on one rule and say which pass and which fail.

NAME is a registered rule (built in or from an installed plugin) or ``module:factory`` for a rule not yet
registered, e.g. while writing a plugin: ``rulelab check-rule my_package.rules:my_rule``.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rule", help="a registered rule name, or module:factory for an unregistered rule")
    parser.add_argument("--no-learning", action="store_true", help="skip the (slower) loss-reduction check")


def run(args: argparse.Namespace) -> int:
    from rulelab.cli.arguments import CommandLineError
    from rulelab.sweep.checks import check_rule, format_results
    from rulelab.sweep.config import SweepConfigError, resolve_rule

    try:
        name = resolve_rule(args.rule)
    except SweepConfigError as error:
        raise CommandLineError(str(error)) from None
    results = check_rule(name, learn=not args.no_learning)
    print(format_results(name, results))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed" if failed else f"all {len(results)} checks passed")
    return 1 if failed else 0
