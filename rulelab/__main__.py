"""``python -m rulelab``: the ``rulelab`` command."""

from rulelab.cli import entry_point

entry_point()
