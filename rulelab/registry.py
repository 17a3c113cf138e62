"""Rule registry: ``register_rule``, ``make_rule``, ``list_rules``.

Built-in rules register themselves when ``rulelab.rules`` is imported. Third-party packages declare rules in the
entry-point group ``rulelab.rules`` (name = rule name, value = ``module:factory``); an entry point is loaded only
when its name is asked for and is not built in, so a broken plugin never slows or breaks ``import rulelab``.

A factory has the signature ``factory(net, **hyperparameters) -> LearningRule``. Numeric hyperparameters must be
usable as traced JAX values, so the harness can ``vmap`` a sweep over them without recompiling.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from typing import Any, Callable

from rulelab.core import ConformanceProblem, Factory, LearningRule

ENTRY_POINT_GROUP = "rulelab.rules"

_BUILTIN: dict[str, Factory] = {}
_PLUGINS: dict[str, Factory] = {}
_CONFORMANCE: dict[str, Callable[[], ConformanceProblem]] = {}


class UnknownRuleError(ValueError):
    """Raised for a rule name that is neither built in nor provided by an installed plugin."""


def register_rule(
    name: str, *, conformance: Callable[[], ConformanceProblem] | None = None
) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory(net, **hyperparameters) -> LearningRule`` under ``name``.

    ``conformance`` builds the small problem the shared conformance suite checks the rule on; leave it out for a
    rule that trains a supervised ``rulelab.mlp`` on ``Batch(x, y)`` (the suite then uses a teacher–student task).
    """

    def decorator(factory: Factory) -> Factory:
        if name in _BUILTIN and _BUILTIN[name] is not factory:
            raise ValueError(f"a rule named {name!r} is already registered")
        _BUILTIN[name] = factory
        if conformance is not None:
            _CONFORMANCE[name] = conformance
        return factory

    return decorator


def conformance_problem(name: str) -> ConformanceProblem | None:
    """The rule's own conformance problem, or ``None`` for a supervised-MLP rule."""
    get_factory(name)
    maker = _CONFORMANCE.get(name) or getattr(get_factory(name), "conformance_problem", None)
    return maker() if maker is not None else None


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def list_rules() -> list[str]:
    """Names of every available rule: built-in ones and those declared by installed plugins."""
    return sorted(set(_BUILTIN) | set(_PLUGINS) | set(_entry_points()))


def get_factory(name: str) -> Factory:
    """The factory registered under ``name``, loading a plugin entry point on first use."""
    if name in _BUILTIN:
        return _BUILTIN[name]
    if name in _PLUGINS:
        return _PLUGINS[name]
    entry_point = _entry_points().get(name)
    if entry_point is None:
        raise UnknownRuleError(f"unknown rule {name!r}; available rules: {', '.join(list_rules())}")
    factory = entry_point.load()
    if not callable(factory):
        raise TypeError(f"entry point {name!r} ({entry_point.value}) is not a rule factory")
    _PLUGINS[name] = factory
    return factory


def rule_hyperparameters(name: str) -> dict[str, Any]:
    """Keyword hyperparameters of rule ``name`` with their defaults."""
    signature = inspect.signature(get_factory(name))
    return {
        p.name: p.default
        for p in list(signature.parameters.values())[1:]
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not inspect.Parameter.empty
    }


def make_rule(name: str, net: Any, **hyperparameters: Any) -> LearningRule:
    """Build rule ``name`` for network ``net``; unknown hyperparameters raise an error listing the valid ones."""
    factory = get_factory(name)
    signature = inspect.signature(factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not accepts_any:
        valid = rule_hyperparameters(name)
        unknown = sorted(set(hyperparameters) - set(valid))
        if unknown:
            raise TypeError(
                f"rule {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
    return factory(net, **hyperparameters)
