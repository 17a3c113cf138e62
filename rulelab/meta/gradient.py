"""Meta-gradient descent: ``jax.grad`` of a meta-loss through the whole unrolled inner loop.

A meta-loss is ``meta_loss(meta_params, key) -> scalar`` where ``meta_params`` is any pytree of floats (rule
coefficients, a feedback scale, log learning rates) and ``key`` draws the inner runs. It is pure, so

    g = ∂/∂φ  L(φ, key),   φ ← optimizer(φ, g)

is one jitted step, and ``meta_train_gradient`` scans it. Memory is bounded where the inner loop is built
(``rulelab.meta.unroll``: truncation, checkpointing). A step whose loss or gradient is not finite (a diverging
inner run) leaves ``φ`` and the optimizer state unchanged. ``finite_difference_gradient`` gives the central
differences that check a meta-gradient.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from rulelab.core import Array, PRNGKey, tree_all_finite

MetaParams = Any  # a pytree of float arrays
MetaLoss = Callable[[MetaParams, PRNGKey], Array]


def _with_aux(meta_loss: Callable, has_aux: bool) -> Callable:
    return meta_loss if has_aux else (lambda params, key: (meta_loss(params, key), {}))


def meta_train_gradient(
    meta_loss: MetaLoss,
    meta_params: MetaParams,
    key: PRNGKey,
    *,
    num_steps: int,
    optimizer: optax.GradientTransformation,
    has_aux: bool = False,
) -> tuple[MetaParams, dict[str, Any]]:
    """``num_steps`` meta-gradient steps, each on a fresh key; returns the final ``meta_params`` and a history.

    History entries have a leading ``[num_steps]`` axis: ``meta_loss`` and ``gradient_norm`` at the parameters
    ``meta_params`` the step started from (a pytree of those parameters), ``finite`` (was the step taken) and,
    with ``has_aux`` (``meta_loss`` returns ``(loss, metrics)``), ``metrics``.
    """

    def meta_step(carry, step_key):
        params, opt_state = carry
        (loss, metrics), grads = jax.value_and_grad(_with_aux(meta_loss, has_aux), has_aux=True)(params, step_key)
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        finite = jnp.isfinite(loss) & tree_all_finite(grads)
        new = (optax.apply_updates(params, updates), new_opt_state)
        carry = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, (params, opt_state))
        record = {"meta_loss": loss, "gradient_norm": optax.tree.norm(grads), "finite": finite,
                  "meta_params": params, "metrics": metrics}
        return carry, record

    @jax.jit
    def run(meta_params, key):
        carry = (meta_params, optimizer.init(meta_params))
        (final, _), history = jax.lax.scan(meta_step, carry, jax.random.split(key, num_steps))
        return final, history

    return run(meta_params, key)


def finite_difference_gradient(
    fn: Callable[[MetaParams], Array], meta_params: MetaParams, *, step: float
) -> MetaParams:
    """Central differences ``(f(φ + h e_i) − f(φ − h e_i)) / 2h`` for every scalar in ``meta_params``.

    A Python loop over the ``2n`` evaluations, so a jitted ``fn`` is compiled once and simply called.
    """
    flat, unravel = ravel_pytree(meta_params)
    slopes = []
    for index in range(flat.size):
        direction = jnp.zeros_like(flat).at[index].set(step)
        slopes.append((fn(unravel(flat + direction)) - fn(unravel(flat - direction))) / (2.0 * step))
    return unravel(jnp.stack(slopes))


def relative_error(estimate: MetaParams, reference: MetaParams) -> Array:
    """``‖estimate − reference‖ / ‖reference‖`` over whole pytrees."""
    a, _ = ravel_pytree(estimate)
    b, _ = ravel_pytree(reference)
    return jnp.linalg.norm(a - b) / jnp.linalg.norm(b)
