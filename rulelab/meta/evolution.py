"""Evolution strategies over meta-parameters (evosax 0.3): no gradient through the inner loop, only losses.

Each generation asks the strategy for a population of meta-parameter pytrees, evaluates all of them with
``jax.vmap(meta_loss)`` on one shared key (common random numbers: every member meets the same inner runs, so
the ranking reflects the rules, not the draws) and tells the strategy the losses (evosax minimises).
A non-finite loss (a diverging inner run) counts as ``FAILED_LOSS``. Memory does not grow with the inner-loop
length, and the inner loop may be non-differentiable; the price is variance that grows with the dimension.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import CMA_ES, SNES, Open_ES

from rulelab.core import PRNGKey
from rulelab.meta.gradient import MetaLoss, MetaParams

FAILED_LOSS = 1e6


def _cma_es(population_size: int, solution: Any, std_init: float):
    strategy = CMA_ES(population_size, solution)
    return strategy, strategy.default_params.replace(std_init=jnp.asarray(std_init))


def _snes(population_size: int, solution: Any, std_init: float):
    strategy = SNES(population_size, solution)
    return strategy, strategy.default_params.replace(std_init=jnp.asarray(std_init))


def _open_es(population_size: int, solution: Any, std_init: float):
    strategy = Open_ES(population_size, solution, optimizer=optax.adam(0.05),
                       std_schedule=optax.constant_schedule(std_init))
    return strategy, strategy.default_params


# name -> (population_size, solution, std_init) -> (evosax strategy, its params)
EVOLUTION_STRATEGIES: dict[str, Callable[[int, Any, float], tuple[Any, Any]]] = {
    "cma_es": _cma_es,  # Hansen & Ostermeier 2001
    "snes": _snes,  # Schaul, Glasmachers & Schmidhuber 2011
    "open_es": _open_es,  # Salimans, Ho, Chen, Sidor & Sutskever 2017 (Adam on the search gradient)
}


def make_strategy(name: str, population_size: int, solution: MetaParams, std_init: float):
    if name not in EVOLUTION_STRATEGIES:
        raise ValueError(f"unknown evolution strategy {name!r}; valid: {', '.join(EVOLUTION_STRATEGIES)}")
    return EVOLUTION_STRATEGIES[name](population_size, solution, std_init)


def meta_train_evolution(
    meta_loss: MetaLoss,
    meta_params: MetaParams,
    key: PRNGKey,
    *,
    num_generations: int,
    population_size: int,
    strategy: str = "cma_es",
    std_init: float = 0.1,
) -> tuple[MetaParams, dict[str, Any]]:
    """Evolve ``meta_params`` (the search distribution's initial mean) for ``num_generations``.

    Returns the final mean and a history with a leading ``[num_generations]`` axis: ``meta_loss`` of the mean the
    generation started from (same key as its population), ``population_mean_loss``, ``population_best_loss`` and
    ``meta_params`` (that mean).
    """
    es, es_params = make_strategy(strategy, population_size, meta_params, std_init)
    evaluate_population = jax.vmap(meta_loss, in_axes=(0, None))

    def generation(state, generation_key):
        ask_key, eval_key, tell_key = jax.random.split(generation_key, 3)
        mean = es.get_mean(state)
        population, state = es.ask(ask_key, state, es_params)
        losses = evaluate_population(population, eval_key)
        losses = jnp.where(jnp.isfinite(losses), losses, FAILED_LOSS)
        state, _ = es.tell(tell_key, population, losses, state, es_params)
        record = {"meta_loss": meta_loss(mean, eval_key), "population_mean_loss": jnp.mean(losses),
                  "population_best_loss": jnp.min(losses), "meta_params": mean}
        return state, record

    @jax.jit
    def run(meta_params, key):
        init_key, run_key = jax.random.split(key)
        state = es.init(init_key, meta_params, es_params)
        state, history = jax.lax.scan(generation, state, jax.random.split(run_key, num_generations))
        return es.get_mean(state), history

    return run(meta_params, key)
