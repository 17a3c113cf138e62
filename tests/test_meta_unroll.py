"""Unrolled inner loops: truncation and checkpointing change the gradient's memory, never the forward result."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.meta.inner import train_with_rule
from rulelab.meta.unroll import unroll

STEPS, DECAY = 20, 0.8


def recurrence(theta, **options):
    """c_{t+1} = a c_t + θ from c_0 = 0, so c_T = θ (1 − a^T) / (1 − a)."""
    return unroll(lambda c, _: DECAY * c + theta, jnp.zeros(()), length=STEPS, **options)


@pytest.mark.parametrize("checkpoint_every", [None, 3, 7, 20])
@pytest.mark.parametrize("truncation", [None, 1, 6, 20, 50])
def test_truncated_gradient_counts_only_the_last_steps(truncation, checkpoint_every):
    value, gradient = jax.jit(jax.value_and_grad(
        lambda theta: recurrence(theta, truncation=truncation, checkpoint_every=checkpoint_every)))(1.5)
    kept = STEPS if truncation is None else min(truncation, STEPS)
    np.testing.assert_allclose(value, 1.5 * (1 - DECAY**STEPS) / (1 - DECAY), rtol=1e-5)
    # dc_T/dθ through the last K steps only: Σ_{j<K} a^j
    np.testing.assert_allclose(gradient, (1 - DECAY**kept) / (1 - DECAY), rtol=1e-5)


def nonlinear_loss(matrix, **options):
    def step(state, key):
        return jnp.tanh(state @ matrix + 0.1 * jax.random.normal(key, state.shape))

    keys = jax.random.split(jax.random.key(0), 256)
    return jnp.sum(unroll(step, jnp.ones((128,)), keys, **options) ** 2)


def test_checkpointing_keeps_the_gradient_and_cuts_its_memory():
    matrix = 0.9 * jnp.eye(128) + 0.01 * jax.random.normal(jax.random.key(1), (128, 128))
    compiled = {name: jax.jit(jax.grad(lambda m: nonlinear_loss(m, **options))).lower(matrix).compile()
                for name, options in {"plain": {}, "checkpointed": {"checkpoint_every": 16},
                                      "truncated": {"truncation": 16}}.items()}
    np.testing.assert_allclose(compiled["checkpointed"](matrix), compiled["plain"](matrix), rtol=1e-4, atol=1e-6)
    temp = {name: c.memory_analysis().temp_size_in_bytes for name, c in compiled.items()}
    # 256 stored 128-float carries (plus residuals) against 16 boundaries + one 16-step segment
    assert temp["checkpointed"] < temp["plain"] / 2, temp
    assert temp["truncated"] < temp["plain"] / 2, temp


def test_rule_training_with_checkpoints_matches_plain_training():
    net = rulelab.mlp((3, 1), "linear")
    rule = rulelab.make_rule("parameterized_plasticity", net)

    def final_kernel(key, **options):
        sample = lambda k: rulelab.Batch(jax.random.normal(k, (4, 3)), jnp.zeros(4, jnp.int32))  # noqa: E731
        params, _ = train_with_rule(rule, net.init(key), sample, key, steps=23, learning_rate=0.05, **options)
        return params[0]["kernel"]

    run = jax.jit(final_kernel, static_argnames=("checkpoint_every",))
    # 23 steps in segments of 5: four checkpointed segments and a remainder of 3, keys sliced alike
    np.testing.assert_allclose(run(jax.random.key(4), checkpoint_every=5), run(jax.random.key(4)), rtol=1e-5, atol=1e-6)


def test_bad_unroll_arguments_raise():
    with pytest.raises(ValueError, match="xs or length"):
        unroll(lambda c, _: c, 0.0)
    with pytest.raises(ValueError, match="truncation must be a positive"):
        unroll(lambda c, _: c, 0.0, length=3, truncation=0)
