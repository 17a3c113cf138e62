"""The shared vocabulary of rulelab: parameters, batches, learning rules.

A learning rule is data, exactly as an optax ``GradientTransformation`` is: two pure functions closed over the
rule's hyperparameters.

    state = rule.init(key, params)
    updates, state, metrics = rule.update(params, state, batch, key=key)

``updates`` has the structure of ``params`` and the sign of a gradient, so any optax optimizer applies it. For
``backprop`` the updates *are* ``jax.grad`` of the loss; every other rule is compared with it on that footing.
Whatever a rule owns (fixed feedback matrices, traces, running averages, buffers) lives in its state; the network
stays rule-agnostic.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # a pytree; for `rulelab.mlp` a tuple with one {"kernel": (in, out), "bias": (out,)} per layer
Updates = Params  # same structure as Params, gradient-signed
RuleState = Any  # a NamedTuple owned by the rule
Metrics = dict[str, Array]


class Batch(NamedTuple):
    """A supervised batch."""

    x: Array  # [batch, features]
    y: Array  # [batch] integer class labels


class InitFn(Protocol):
    def __call__(self, key: PRNGKey, params: Params) -> RuleState: ...


class UpdateFn(Protocol):
    def __call__(
        self, params: Params, state: RuleState, batch: Any, *, key: PRNGKey
    ) -> tuple[Updates, RuleState, Metrics]: ...


class LearningRule(NamedTuple):
    """A learning rule as a pair of pure functions (optax style).

    ``init(key, params) -> state`` builds what the rule owns; ``update(params, state, batch, *, key)`` returns
    gradient-signed ``updates`` shaped like ``params``, the new ``state`` and a dict of scalar ``metrics``
    (supervised rules always report ``"loss"``, the loss of ``params`` on ``batch`` before the update).
    """

    init: InitFn
    update: UpdateFn


class EmptyState(NamedTuple):
    """State of a rule that owns nothing."""


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy of ``logits`` [batch, classes] against integer ``labels`` [batch]."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=1))


def accuracy(logits: Array, labels: Array) -> Array:
    """Fraction of rows whose arg-max matches the label."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def tree_cosine(a: Any, b: Any, eps: float = 1e-12) -> Array:
    """Cosine similarity between two pytrees flattened into single vectors."""
    va = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(a)])
    vb = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(b)])
    return jnp.vdot(va, vb) / (jnp.linalg.norm(va) * jnp.linalg.norm(vb) + eps)


def angle_degrees(a: Any, b: Any) -> Array:
    """Angle in degrees between two pytrees seen as vectors (the feedback-alignment papers' diagnostic)."""
    return jnp.degrees(jnp.arccos(jnp.clip(tree_cosine(a, b), -1.0, 1.0)))


def tree_all_finite(tree: Any) -> Array:
    """True when every leaf of ``tree`` is finite."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


Factory = Callable[..., LearningRule]


class ConformanceProblem(NamedTuple):
    """A small problem on which the shared conformance suite checks a rule (tests/test_conformance.py).

    Rules for supervised MLPs need none: the suite uses a teacher–student classification task. A rule for other
    data (an RL agent, a reservoir) registers a zero-argument function returning one of these.
    """

    net: Any  # what the factory takes as ``net``
    init_params: Callable[[PRNGKey], Params]
    sample_batch: Callable[[PRNGKey], Any]  # a fresh batch for ``rule.update``
    loss: Callable[[Params, Any], Array]  # scalar objective the rule should reduce, evaluated on a batch
    hyperparameters: dict[str, Any]  # passed to ``make_rule`` (may be empty)
    learning_rate: float = 0.05  # plain SGD step applied to the rule's updates
    steps: int = 300
    max_final_loss_ratio: float = 0.7  # final loss / initial loss must be at most this
