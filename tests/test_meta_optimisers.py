"""Both meta-optimisers find a known optimum of an unrolled inner loop; the gradient check helper is exact."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rulelab.meta import finite_difference_gradient, meta_train_evolution, meta_train_gradient, relative_error
from rulelab.meta.evolution import EVOLUTION_STRATEGIES, make_strategy
from rulelab.meta.unroll import unroll

CURVATURE, TARGET = 4.0, 0.7


def inner_loss(meta_params, key):
    """One noisy gradient step on f(x) = ½a(x − b)² from x₀ ~ N(0, 1): the final loss is ½a(1 − ηa)²(x₀ − b)²,
    minimised at η = 1/a for every x₀. A second meta-parameter shifts the target: optimal at ``shift = 0``."""
    x0 = jax.random.normal(key, (8,))
    target = TARGET + meta_params["shift"]

    def step(x, _):
        return x - meta_params["learning_rate"] * CURVATURE * (x - TARGET)

    final = unroll(step, x0, length=1)
    return jnp.mean(0.5 * CURVATURE * (final - target) ** 2)


START = {"learning_rate": jnp.asarray(0.05), "shift": jnp.asarray(0.4)}


def test_meta_gradient_descent_finds_the_optimal_learning_rate():
    final, history = meta_train_gradient(inner_loss, START, jax.random.key(0), num_steps=300,
                                         optimizer=optax.adam(0.02))
    assert abs(float(final["learning_rate"]) - 1 / CURVATURE) < 0.02
    assert abs(float(final["shift"])) < 0.05
    assert float(history["meta_loss"][-1]) < 0.05 * float(history["meta_loss"][0])
    assert history["meta_params"]["learning_rate"].shape == (300,) and bool(jnp.all(history["finite"]))


@pytest.mark.parametrize("strategy", sorted(EVOLUTION_STRATEGIES))
def test_evolution_strategies_find_the_optimal_learning_rate(strategy):
    final, history = meta_train_evolution(inner_loss, START, jax.random.key(0), num_generations=60,
                                          population_size=16, strategy=strategy, std_init=0.1)
    assert abs(float(final["learning_rate"]) - 1 / CURVATURE) < 0.03, final
    assert abs(float(final["shift"])) < 0.08, final
    assert float(history["meta_loss"][-1]) < 0.1 * float(history["meta_loss"][0])


def test_non_finite_meta_losses_are_skipped_by_gradient_and_penalised_by_evolution():
    def exploding(meta_params, key):  # diverges (NaN) above a learning rate of 0.5
        loss = inner_loss(meta_params, key)
        return jnp.where(meta_params["learning_rate"] > 0.5, jnp.nan, loss)

    start = {"learning_rate": jnp.asarray(0.6), "shift": jnp.asarray(0.0)}
    final, history = meta_train_gradient(exploding, start, jax.random.key(0), num_steps=5, optimizer=optax.sgd(0.1))
    assert float(final["learning_rate"]) == pytest.approx(0.6) and not bool(jnp.any(history["finite"]))
    final, _ = meta_train_evolution(exploding, start, jax.random.key(0), num_generations=40, population_size=16,
                                    std_init=0.2)
    assert float(final["learning_rate"]) < 0.5


def test_finite_differences_match_an_analytic_gradient():
    def fn(p):
        return jnp.sum(jnp.sin(p["a"])) + p["b"] ** 3

    params = {"a": jnp.array([0.3, -1.2]), "b": jnp.asarray(0.5)}
    estimate = finite_difference_gradient(jax.jit(fn), params, step=1e-2)
    exact = {"a": jnp.cos(params["a"]), "b": 3 * params["b"] ** 2}
    assert float(relative_error(estimate, exact)) < 1e-4  # O(h²) truncation, h = 1e-2
    np.testing.assert_allclose(estimate["a"], exact["a"], rtol=1e-3)


def test_unknown_strategy_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: cma_es, snes, open_es"):
        make_strategy("nelder_mead", 8, START, 0.1)
