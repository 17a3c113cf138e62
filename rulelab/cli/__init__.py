"""The ``rulelab`` command. Each subcommand lives in its own module exposing ``add_arguments`` and ``run``.

Every bad input ends in one line on stderr naming the valid choices and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from rulelab.cli.arguments import CommandLineError, OneLineParser

# subcommand -> (module, one-line help); modules are imported only when their command runs
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "compare": ("rulelab.cli.compare", "train rules against backprop on one data set"),
    "meta-rl": ("rulelab.cli.meta_rl", "meta-RL learners on bandits, two-step and Harlow tasks vs reference policies"),
    "conditioning": ("rulelab.cli.conditioning", "TD model of dopamine: Pavlovian conditioning, omission, extinction"),
    "reservoir": ("rulelab.cli.reservoir", "FORCE and other readout rules generating temporal patterns"),
    "sweep": ("rulelab.cli.sweep", "run or resume a sweep from a TOML config into a results folder"),
    "check-rule": ("rulelab.cli.check_rule", "run the conformance checks on one rule, check by check"),
    "plot": ("rulelab.cli.plot", "redraw every standard figure from a results folder as PNG"),
    "continual": ("rulelab.cli.continual", "continual-learning methods (replay, sleep, EWC, SI) on task suites"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = OneLineParser(prog="rulelab", description="A laboratory for biologically plausible learning rules.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    # Only the chosen subcommand's module is imported, so one command's heavy imports never slow another.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(f"a command is required; valid: {', '.join(SUBCOMMANDS)}")
    try:
        return int(module.run(args) or 0)
    except CommandLineError as error:
        print(f"rulelab {args.command}: error: {error}", file=sys.stderr)
        return 2


def entry_point() -> None:
    """The ``rulelab`` console script: one host device per CPU core (unless the user chose), then ``main``.

    Only a fresh process can choose its device count, so this lives here and not in ``main``, which tests and
    notebooks call in-process.
    """
    from rulelab.harness.sharding import HOST_DEVICES_ENV, use_host_device_per_core

    try:
        use_host_device_per_core()
    except ValueError as error:
        print(f"rulelab: error: {error} (set {HOST_DEVICES_ENV}=1 to keep one host device)", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
