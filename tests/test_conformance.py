"""One conformance suite run over every registered rule (built-in and plugin), optax ``_common_test`` style."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.registry import conformance_problem, rule_hyperparameters
from rulelab.sweep.checks import train_on_problem
from tests.conformance_problems import teacher_student_problem

RULES = rulelab.list_rules()


def problem_for(name):
    return conformance_problem(name) or teacher_student_problem()


@pytest.fixture(scope="module", params=RULES)
def case(request):
    name = request.param
    problem = problem_for(name)
    rule = rulelab.make_rule(name, problem.net, **problem.hyperparameters)
    params = problem.init_params(jax.random.key(0))
    state = rule.init(jax.random.key(1), params)
    batch = problem.sample_batch(jax.random.key(2))
    return name, problem, rule, params, state, batch


def test_updates_match_param_shapes_and_are_finite(case):
    _, _, rule, params, state, batch = case
    updates, new_state, metrics = rule.update(params, state, batch, key=jax.random.key(3))
    assert jax.tree.structure(updates) == jax.tree.structure(params)
    for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
        assert u.shape == p.shape and u.dtype == p.dtype
        assert bool(jnp.all(jnp.isfinite(u)))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert all(bool(jnp.all(jnp.isfinite(jnp.asarray(m)))) for m in metrics.values())


def test_jit_matches_eager_and_does_not_recompile(case):
    _, problem, rule, params, state, batch = case
    traces = []

    def counted(params, state, batch, key):
        traces.append(1)
        return rule.update(params, state, batch, key=key)

    jitted = jax.jit(counted)
    eager_updates, _, _ = rule.update(params, state, batch, key=jax.random.key(3))
    jit_updates, _, _ = jitted(params, state, batch, jax.random.key(3))
    other_batch = problem.sample_batch(jax.random.key(5))
    jitted(params, state, other_batch, jax.random.key(4))
    assert len(traces) == 1
    for a, b in zip(jax.tree.leaves(eager_updates), jax.tree.leaves(jit_updates)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_vmap_over_keys_matches_single_runs(case):
    _, _, rule, params, _, batch = case
    keys = jax.random.split(jax.random.key(7), 3)

    def one(key):
        init_key, update_key = jax.random.split(key)
        state = rule.init(init_key, params)
        return rule.update(params, state, batch, key=update_key)[0]

    batched = jax.jit(jax.vmap(one))(keys)
    single = jax.jit(one)(keys[1])
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
        np.testing.assert_allclose(a[1], b, rtol=2e-4, atol=2e-5)


def test_deterministic_for_a_given_key(case):
    _, _, rule, params, _, batch = case
    run = jax.jit(lambda key: rule.update(params, rule.init(key, params), batch, key=key)[0])
    first, second = run(jax.random.key(11)), run(jax.random.key(11))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
        np.testing.assert_array_equal(a, b)


def test_numeric_hyperparameters_accept_traced_values(case):
    name, problem, _, params, _, batch = case
    numeric = {k: float(v) for k, v in rule_hyperparameters(name).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in problem.hyperparameters}
    if not numeric:
        pytest.skip(f"{name} has no numeric hyperparameters")
    static = {k: v for k, v in problem.hyperparameters.items()}

    @jax.jit
    def update_with(hparams):
        rule = rulelab.make_rule(name, problem.net, **static, **hparams)
        return rule.update(params, rule.init(jax.random.key(1), params), batch, key=jax.random.key(3))[0]

    updates = update_with({k: jnp.asarray(v, jnp.float32) for k, v in numeric.items()})
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


def test_reduces_the_loss_on_its_problem(case):
    name, problem, rule, params, state, _ = case
    evaluation = problem.sample_batch(jax.random.key(99))
    before = float(problem.loss(params, evaluation))
    after = float(problem.loss(train_on_problem(rule, problem, params, state), evaluation))
    assert np.isfinite(after)
    assert after <= problem.max_final_loss_ratio * before, f"{name}: loss {before:.4f} -> {after:.4f}"
