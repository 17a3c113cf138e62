"""Argument parsing that fails in one line: shared by every subcommand."""

from __future__ import annotations

import argparse
import sys
from typing import Iterable, NoReturn


class CommandLineError(ValueError):
    """A bad command-line value; reported as one line with a non-zero exit."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """``"128,128"`` -> ``(128, 128)``; every entry a positive integer."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 128,128, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 128,128, got {text!r}")
    return values


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    if not names or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names like a,b, got {text!r}")
    return names


def check_choices(kind: str, names: Iterable[str], valid: Iterable[str]) -> None:
    """Raise ``CommandLineError`` naming the valid choices when any of ``names`` is not one of them."""
    valid = list(valid)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise CommandLineError(f"unknown {kind} {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
