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
}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="rulelab", description="A laboratory for biologically plausible learning rules.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        modules[name] = importlib.import_module(module_name)
        modules[name].add_arguments(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error(f"a command is required; valid: {', '.join(SUBCOMMANDS)}")
    try:
        return int(modules[args.command].run(args) or 0)
    except CommandLineError as error:
        print(f"rulelab {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
