"""Unrolled inner loops whose meta-gradient memory can be bounded: truncation and gradient checkpointing.

``unroll(step, carry, xs)`` is ``lax.scan`` keeping only the final carry. Reverse-mode differentiation of a scan
stores every step's residuals, so the memory of ``jax.grad`` through ``T`` steps grows like ``T``. Two controls:

- ``truncation=K``: the gradient flows through the last ``K`` steps only; the first ``T − K`` run under
  ``lax.stop_gradient`` of their result (truncated backpropagation through time; biased toward short horizons,
  Wu, Ren, Liao & Grosse 2018). Memory ~ ``K`` steps of residuals.
- ``checkpoint_every=S``: the steps are grouped into segments of ``S``; each segment is ``jax.checkpoint``-ed, so
  the forward pass stores only the ``T/S`` carries at segment boundaries and the backward pass recomputes one
  segment at a time (Griewank & Walther 2000; Chen, Xu, Zhang & Guestrin 2016). Memory ~ ``T/S + S`` carries,
  smallest near ``S = √T``, for about one extra forward pass of compute. The gradient is unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Carry = Any


def _leading_length(xs: Any) -> int:
    return int(jax.tree.leaves(xs)[0].shape[0])


def _slice(xs: Any, start: int, stop: int) -> Any:
    return jax.tree.map(lambda x: x[start:stop], xs)


def _plain_scan(step: Callable[[Carry, Any], Carry], carry: Carry, xs: Any) -> Carry:
    return jax.lax.scan(lambda c, x: (step(c, x), None), carry, xs)[0]


def _checkpointed_scan(step: Callable[[Carry, Any], Carry], carry: Carry, xs: Any, segment: int) -> Carry:
    length = _leading_length(xs)
    num_segments, remainder = divmod(length, segment)

    @jax.checkpoint
    def run_segment(carry: Carry, segment_xs: Any) -> tuple[Carry, None]:
        return _plain_scan(step, carry, segment_xs), None

    whole = _slice(xs, 0, num_segments * segment)
    segments = jax.tree.map(lambda x: x.reshape(num_segments, segment, *x.shape[1:]), whole)
    carry, _ = jax.lax.scan(run_segment, carry, segments)
    if remainder:
        carry, _ = run_segment(carry, _slice(xs, num_segments * segment, length))
    return carry


def _scan(step: Callable[[Carry, Any], Carry], carry: Carry, xs: Any, checkpoint_every: int | None) -> Carry:
    if _leading_length(xs) == 0:
        return carry
    if checkpoint_every is None or checkpoint_every >= _leading_length(xs):
        return _plain_scan(step, carry, xs)
    return _checkpointed_scan(step, carry, xs, checkpoint_every)


def unroll(
    step: Callable[[Carry, Any], Carry],
    carry: Carry,
    xs: Any = None,
    *,
    length: int | None = None,
    truncation: int | None = None,
    checkpoint_every: int | None = None,
) -> Carry:
    """``carry ← step(carry, xs[t])`` for every ``t``; returns the final carry.

    ``xs`` is a pytree with a leading time axis (keys, data); with ``xs=None`` the step receives ``t`` and
    ``length`` sets the number of steps. ``truncation`` and ``checkpoint_every`` bound the memory of the gradient
    (see the module docstring); neither changes the forward result.
    """
    if xs is None:
        if length is None:
            raise ValueError("unroll needs xs or length")
        xs = jnp.arange(length)
    for name, value in (("truncation", truncation), ("checkpoint_every", checkpoint_every)):
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be a positive number of steps, got {value}")
    total = _leading_length(xs)
    if truncation is not None and truncation < total:
        prefix = _slice(xs, 0, total - truncation)
        carry = jax.lax.stop_gradient(_scan(step, carry, prefix, checkpoint_every))
        xs = _slice(xs, total - truncation, total)
    return _scan(step, carry, xs, checkpoint_every)
