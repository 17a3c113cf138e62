"""Task-aware rules: a learning rule plus an ``end_task`` hook the continual harness calls at every task boundary.

    state = rule.init(key, params)
    updates, state, metrics = rule.update(params, state, batch, key=key)        # every training step
    params, state, metrics = rule.end_task(params, state, batch, key=key)       # after the last step of a task

``end_task`` gets a sample of the task just finished (``Batch``) and returns the parameters to carry into the next
task: consolidation that is not a gradient step (EWC's Fisher, synaptic intelligence's importance, a sleep phase)
lives here. It is pure and jittable, so the harness calls it inside its ``lax.scan`` over tasks. A plain
``LearningRule`` is task-aware with a no-op hook (``end_task_of``); wrappers compose like ``optax.chain``, each
calling its inner rule's hook before its own.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax

from rulelab.core import InitFn, LearningRule, Metrics, Params, PRNGKey, RuleState, UpdateFn
from rulelab.registry import make_rule


class EndTaskFn(Protocol):
    def __call__(
        self, params: Params, state: RuleState, batch: Any, *, key: PRNGKey
    ) -> tuple[Params, RuleState, Metrics]: ...


class TaskAwareRule(NamedTuple):
    """A learning rule with a task-boundary hook; usable wherever a ``LearningRule`` is (same ``init``/``update``)."""

    init: InitFn
    update: UpdateFn
    end_task: EndTaskFn


def no_consolidation(params: Params, state: RuleState, batch: Any, *, key: PRNGKey):
    """The hook of a rule that does nothing at task boundaries."""
    del batch, key
    return params, state, {}


def end_task_of(rule: LearningRule | TaskAwareRule) -> EndTaskFn:
    """``rule.end_task`` when the rule has one, else the no-op hook."""
    return getattr(rule, "end_task", no_consolidation)


def as_task_aware(rule: LearningRule | TaskAwareRule) -> TaskAwareRule:
    return TaskAwareRule(rule.init, rule.update, end_task_of(rule))


def resolve_inner(net: Any, inner: str | LearningRule | TaskAwareRule) -> TaskAwareRule:
    """The rule a wrapper wraps: a registered name (built with its defaults) or a rule object."""
    rule = make_rule(inner, net) if isinstance(inner, str) else inner
    return as_task_aware(rule)


def chain_end_task(inner: TaskAwareRule, own: EndTaskFn) -> EndTaskFn:
    """A wrapper's ``end_task``: the inner rule's hook on ``state.inner`` first, then the wrapper's ``own`` hook.

    Wrapper states are NamedTuples whose ``inner`` field holds the inner rule's state.
    """

    def end_task(params, state, batch, *, key):
        inner_key, own_key = jax.random.split(key)
        params, inner_state, inner_metrics = inner.end_task(params, state.inner, batch, key=inner_key)
        params, state, metrics = own(params, state._replace(inner=inner_state), batch, key=own_key)
        return params, state, {**inner_metrics, **metrics}

    return end_task
