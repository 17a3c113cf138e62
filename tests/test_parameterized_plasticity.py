"""The parameterized plasticity rule: its terms, its identities, and Oja's known result."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab
from rulelab.core import Batch
from rulelab.meta.inner import train_with_rule
from rulelab.meta.principal_component import fixed_task, sample_inputs, squared_alignment
from rulelab.rules.parameterized_plasticity import (
    BASES,
    PlasticityBatch,
    coefficient_vector,
    oja_coefficients,
    plasticity_terms,
)

RTOL, ATOL = 1e-5, 1e-6


def random_layer(seed, batch=6, inputs=3, outputs=2):
    keys = jax.random.split(jax.random.key(seed), 4)
    return (jax.random.normal(keys[0], (batch, inputs)), jax.random.normal(keys[1], (batch, outputs)),
            jax.random.normal(keys[2], (inputs, outputs)), jax.random.uniform(keys[3], (batch,), minval=-1, maxval=2))


def kernel_updates(net, params, batch, **static):
    """Jitted ``(coefficients, plasticity_rate) -> [kernel update per layer]`` (one compile, not one per op)."""

    @jax.jit
    def run(coefficients, plasticity_rate=1.0):
        rule = rulelab.make_rule("parameterized_plasticity", net, coefficients=coefficients,
                                 plasticity_rate=plasticity_rate, **static)
        updates, _, _ = rule.update(params, rule.init(jax.random.key(0), params), batch, key=jax.random.key(1))
        return [u["kernel"] for u in updates], [u["bias"] for u in updates]

    return run


def test_polynomial_basis_is_the_27_monomials_of_confavreux():
    basis = BASES["polynomial"]
    assert basis.num_terms == 27 and len(set(basis.term_names)) == 27
    assert {e[:3] for e in basis.exponents} == set(itertools.product(range(3), repeat=3))
    assert BASES["abcd"].term_names == ("x*y", "x", "y", "1")
    assert BASES["modulated_abcd"].term_names == ("x*y*m", "x*m", "y*m", "m")


@pytest.mark.parametrize("basis_name", sorted(BASES))
def test_every_term_matches_a_per_synapse_loop(basis_name):
    pre, post, weight, modulator = (np.asarray(a, np.float64) for a in random_layer(0))
    basis = BASES[basis_name]
    terms = np.asarray(jax.jit(lambda *arrays: plasticity_terms(basis, *arrays))(
        *(jnp.asarray(a, jnp.float32) for a in (pre, post, weight, modulator))))
    batch, inputs = pre.shape
    outputs = post.shape[1]
    for k, (alpha, beta, gamma, delta) in enumerate(basis.exponents):
        expected = np.zeros((inputs, outputs))
        for i, j in itertools.product(range(inputs), range(outputs)):
            samples = [modulator[b] ** delta * pre[b, i] ** alpha * post[b, j] ** beta for b in range(batch)]
            expected[i, j] = np.mean(samples) * weight[i, j] ** gamma
        np.testing.assert_allclose(terms[k], expected, rtol=1e-4, atol=1e-5, err_msg=basis.term_names[k])


def test_default_polynomial_rule_is_ojas_rule_on_a_linear_unit():
    net = rulelab.mlp((4, 1), "linear")
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (16, 4))
    (kernel,), (bias,) = kernel_updates(net, params, PlasticityBatch(x, jnp.ones(16)))(None)
    w = np.asarray(params[0]["kernel"], np.float64)
    y = np.asarray(x, np.float64) @ w
    oja = np.asarray(x, np.float64).T @ y / 16 - np.mean(y**2) * w  # Δw = ⟨x y⟩ − ⟨y²⟩ w
    np.testing.assert_allclose(kernel, -oja, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(bias, 0.0)


def test_hidden_layers_use_their_activation_as_postsynaptic_activity():
    net = rulelab.mlp((3, 5, 2), "tanh")
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (8, 3))
    run = kernel_updates(net, params, Batch(x, jnp.zeros(8, jnp.int32)), basis="abcd")
    (first, second), _ = run(jnp.array([1.0, 0.0, 0.0, 0.0]))  # plain Hebb: ΔW = ⟨x y⟩
    x, (w0, b0), (w1, b1) = np.asarray(x), (np.asarray(params[0][k]) for k in ("kernel", "bias")), \
        (np.asarray(params[1][k]) for k in ("kernel", "bias"))
    hidden = np.tanh(x @ w0 + b0)
    logits = hidden @ w1 + b1
    np.testing.assert_allclose(first, -x.T @ hidden / 8, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(second, -hidden.T @ logits / 8, rtol=1e-4, atol=1e-5)


def test_updates_are_linear_in_the_coefficients_and_the_plasticity_rate():
    net = rulelab.mlp((3, 4, 2), "tanh")
    params = net.init(jax.random.key(0))
    batch = PlasticityBatch(*(random_layer(1, batch=5, inputs=3)[i] for i in (0, 3)))
    theta_a, theta_b = (jax.random.normal(jax.random.key(s), (27,)) for s in (5, 6))

    run = kernel_updates(net, params, batch)

    def updates(theta, rate=1.0):
        return [np.asarray(k) for k in run(theta, rate)[0]]

    for total, a, b in zip(updates(theta_a + 2.0 * theta_b), updates(theta_a), updates(theta_b)):
        np.testing.assert_allclose(total, a + 2.0 * b, rtol=1e-4, atol=1e-5)
    for scaled, plain in zip(updates(theta_a, rate=0.3), updates(theta_a)):
        np.testing.assert_allclose(scaled, 0.3 * plain, rtol=1e-5, atol=1e-6)


def test_modulator_gates_the_three_factor_basis():
    net = rulelab.mlp((3, 2), "linear")
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (7, 3))
    theta = jnp.array([0.7, -0.2, 0.4, 0.1])

    @functools.partial(jax.jit, static_argnums=0)
    def kernel(basis, batch):
        rule = rulelab.make_rule("parameterized_plasticity", net, basis=basis, coefficients=theta)
        return rule.update(params, (), batch, key=jax.random.key(0))[0][0]["kernel"]

    def modulated(basis, m):
        return np.asarray(kernel(basis, PlasticityBatch(x, jnp.full(7, m))))

    np.testing.assert_array_equal(modulated("modulated_abcd", 0.0), 0.0)
    np.testing.assert_allclose(modulated("modulated_abcd", -2.5), -2.5 * modulated("abcd", 1.0), rtol=1e-5, atol=1e-6)
    # the unmodulated basis ignores the modulator, and a batch without one means m = 1
    np.testing.assert_array_equal(modulated("abcd", 3.0), modulated("abcd", 1.0))
    no_modulator = kernel("modulated_abcd", Batch(x, jnp.zeros(7, jnp.int32)))
    np.testing.assert_allclose(no_modulator, modulated("modulated_abcd", 1.0), rtol=1e-6)


def test_constant_term_is_a_uniform_drift():
    net = rulelab.mlp((3, 2), "linear")
    params = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, 3))
    run = kernel_updates(net, params, PlasticityBatch(x, jnp.ones(4)), basis="abcd")
    (kernel,), _ = run(jnp.array([0.0, 0.0, 0.0, 0.25]))
    np.testing.assert_allclose(kernel, -0.25 * np.ones((3, 2)), rtol=1e-6)


def test_coefficients_by_name_and_bad_inputs():
    basis = BASES["polynomial"]
    np.testing.assert_array_equal(coefficient_vector(basis, {"x*y": 1.0, "y^2*w": -1.0}), oja_coefficients())
    assert float(jnp.sum(jnp.abs(oja_coefficients()))) == 2.0
    with pytest.raises(ValueError, match="valid: x\\*y, x, y, 1"):
        coefficient_vector(BASES["abcd"], {"y^2*w": 1.0})
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        coefficient_vector(BASES["abcd"], jnp.ones(27))
    with pytest.raises(ValueError, match="valid: polynomial, abcd, modulated_abcd"):
        rulelab.make_rule("parameterized_plasticity", rulelab.mlp((2, 1)), basis="cubic")


def test_coefficients_are_traced_and_vmappable():
    net = rulelab.mlp((3, 2), "linear")
    params = net.init(jax.random.key(0))
    batch = PlasticityBatch(jax.random.normal(jax.random.key(1), (5, 3)), jnp.ones(5))

    @jax.jit
    def kernel(theta):
        rule = rulelab.make_rule("parameterized_plasticity", net, coefficients=theta)
        return rule.update(params, (), batch, key=jax.random.key(0))[0][0]["kernel"]

    thetas = jax.random.normal(jax.random.key(2), (3, 27))
    batched = jax.vmap(kernel)(thetas)
    for index in range(3):
        np.testing.assert_allclose(batched[index], kernel(thetas[index]), rtol=1e-5, atol=1e-6)
    gradient = jax.grad(lambda theta: jnp.sum(kernel(theta) ** 2))(thetas[0])
    assert gradient.shape == (27,) and bool(jnp.all(jnp.isfinite(gradient)))


def test_ojas_rule_extracts_the_first_principal_component():
    """Oja (1982): with Δw = η(x y − y² w) a linear unit converges to the unit-norm leading eigenvector."""
    task = fixed_task(num_inputs=6)
    net = rulelab.mlp((6, 1), "linear")
    rule = rulelab.make_rule("parameterized_plasticity", net)

    def sample_batch(key):
        x = sample_inputs(key, task, 16)
        return PlasticityBatch(x, jnp.ones(16))

    params, _ = jax.jit(lambda key: train_with_rule(rule, net.init(key), sample_batch, key,
                                                    steps=1000, learning_rate=0.02))(jax.random.key(3))
    weight = params[0]["kernel"][:, 0]
    assert float(squared_alignment(weight, task.principal_component)) > 0.99
    assert abs(float(jnp.linalg.norm(weight)) - 1.0) < 0.05
