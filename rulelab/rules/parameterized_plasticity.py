"""Parameterized plasticity: one local rule whose coefficients are the (meta-)parameters.

Every synapse ``W_ij`` from presynaptic unit ``i`` to postsynaptic unit ``j`` changes by a weighted sum of basis
terms that use only what the synapse can see: its presynaptic activity ``x_i``, its postsynaptic activity ``y_j``,
its own weight ``W_ij`` and a scalar modulator ``m`` (a third factor: reward, surprise, a broadcast error):

    ΔW_ij = η Σ_k θ_k φ_k,   φ_k = ⟨ m^δ_k x_i^α_k y_j^β_k ⟩_batch · W_ij^γ_k

A basis is the list of exponents ``(α_k, β_k, γ_k, δ_k)``. Built in (``BASES``):

- ``"polynomial"``: all 27 monomials ``x^α y^β w^γ`` with α, β, γ ∈ {0, 1, 2}, the truncated Volterra expansion of
  Confavreux, Zenke, Agnes, Lillicrap & Vogels (2020, NeurIPS). Oja's rule is θ[x*y] = 1, θ[y^2*w] = −1.
- ``"abcd"``: ``A·x y + B·x + C·y + D`` (Najarro & Risi 2020, NeurIPS, "Meta-learning through Hebbian
  plasticity in random networks"). They learn one (A, B, C, D, η) per synapse; here the coefficients are shared by
  every synapse, which is what makes a learned rule a *rule* rather than a weight initialisation.
- ``"modulated_abcd"``: the same four terms, each gated by the modulator ``m`` (a three-factor rule,
  Frémaux & Gerstner 2016, Front. Neural Circuits 9:85).

Layer ``l`` uses ``x = h_l`` (its input) and ``y = f(a_l)`` (``y = a_l`` for the linear output layer), so the rule
applies to any ``rulelab.mlp``. Biases are not plastic (their update is zero). Updates are gradient-signed like
every rule's: ``updates = −η Σ_k θ_k φ_k``, so plain SGD with learning rate ``lr`` changes ``W`` by
``lr·η·Σ θ_k φ_k``. ``coefficients`` and ``plasticity_rate`` may be traced arrays: ``jax.grad`` and ``vmap`` reach
them, which is how ``rulelab.meta`` meta-learns them.

A batch is anything with an ``x`` field ``[batch, features]``; ``PlasticityBatch`` adds the modulator
``[batch]`` (a ``rulelab.Batch`` or a batch without one means ``m = 1``).
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping, NamedTuple

import jax.numpy as jnp

from rulelab.core import (
    Array,
    ConformanceProblem,
    EmptyState,
    LearningRule,
    softmax_cross_entropy,
)
from rulelab.nets.mlp import Activity, Network
from rulelab.registry import register_rule


class PlasticityBatch(NamedTuple):
    """Inputs for an unsupervised or modulated local rule."""

    x: Array  # [batch, features]
    modulator: Array  # [batch], the third factor m of every sample


class PlasticityBasis(NamedTuple):
    """A documented set of local terms ``φ_k = ⟨m^δ x^α y^β⟩ · w^γ``."""

    exponents: tuple[tuple[int, int, int, int], ...]  # (α pre, β post, γ weight, δ modulator) per term
    default_coefficients: Mapping[str, float]  # by term name; terms left out are 0
    reference: str

    @property
    def term_names(self) -> tuple[str, ...]:
        return tuple(term_name(e) for e in self.exponents)

    @property
    def num_terms(self) -> int:
        return len(self.exponents)


def term_name(exponents: tuple[int, int, int, int]) -> str:
    """``(1, 2, 0, 0)`` -> ``"x*y^2"``; the constant term is ``"1"``."""
    factors = [
        symbol if power == 1 else f"{symbol}^{power}"
        for symbol, power in zip(("x", "y", "w", "m"), exponents)
        if power
    ]
    return "*".join(factors) or "1"


_ABCD_EXPONENTS = ((1, 1, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 0, 0))

BASES: dict[str, PlasticityBasis] = {
    "polynomial": PlasticityBasis(
        tuple((a, b, g, 0) for a, b, g in itertools.product(range(3), repeat=3)),
        {"x*y": 1.0, "y^2*w": -1.0},  # Oja's rule
        "Confavreux et al. 2020, NeurIPS: Volterra expansion to second order in x, y and w",
    ),
    "abcd": PlasticityBasis(
        _ABCD_EXPONENTS,
        {"x*y": 1.0},  # plain Hebb
        "Najarro & Risi 2020, NeurIPS: ΔW = η(A x y + B x + C y + D)",
    ),
    "modulated_abcd": PlasticityBasis(
        tuple((a, b, g, 1) for a, b, g, _ in _ABCD_EXPONENTS),
        {"x*y*m": 1.0},  # reward-modulated Hebb
        "three-factor ABCD rule: ΔW = η m (A x y + B x + C y + D) (Frémaux & Gerstner 2016)",
    ),
}


def get_basis(name: str) -> PlasticityBasis:
    if name not in BASES:
        raise ValueError(f"unknown plasticity basis {name!r}; valid: {', '.join(BASES)}")
    return BASES[name]


def coefficient_vector(basis: PlasticityBasis, coefficients: Any = None) -> Array:
    """Coefficients θ ``[num_terms]`` from ``None`` (the basis's default), a mapping by term name, or an array."""
    if coefficients is None:
        coefficients = basis.default_coefficients
    if isinstance(coefficients, Mapping):
        unknown = sorted(set(coefficients) - set(basis.term_names))
        if unknown:
            raise ValueError(f"unknown plasticity terms {unknown}; valid: {', '.join(basis.term_names)}")
        return jnp.stack([jnp.asarray(coefficients.get(name, 0.0), jnp.float32) for name in basis.term_names])
    theta = jnp.asarray(coefficients)
    if theta.shape != (basis.num_terms,):
        raise ValueError(f"coefficients must have shape ({basis.num_terms},) for this basis, got {theta.shape}")
    return theta


def oja_coefficients(basis_name: str = "polynomial") -> Array:
    """Oja's rule ``Δw = x y − y² w`` in ``basis_name`` (only the polynomial basis can express it)."""
    return coefficient_vector(get_basis(basis_name), {"x*y": 1.0, "y^2*w": -1.0})


def plasticity_terms(basis: PlasticityBasis, pre: Array, post: Array, weight: Array, modulator: Array) -> Array:
    """Every basis term for one layer: ``[num_terms, in, out]``.

    ``pre`` [batch, in], ``post`` [batch, out], ``weight`` [in, out], ``modulator`` [batch]. The batch average of
    ``m^δ x_i^α y_j^β`` is one matrix product per distinct (α, β, δ); the weight factor multiplies elementwise.
    """
    batch_size = pre.shape[0]
    correlations: dict[tuple[int, int, int], Array] = {}
    terms = []
    for alpha, beta, gamma, delta in basis.exponents:
        if (alpha, beta, delta) not in correlations:
            gated_post = post**beta * (modulator**delta)[:, None]
            correlations[alpha, beta, delta] = (pre**alpha).T @ gated_post / batch_size
        terms.append(correlations[alpha, beta, delta] * weight**gamma)
    return jnp.stack(terms)


def _postsynaptic(net: Network, activity: Activity) -> tuple[Array, ...]:
    last = net.num_layers - 1
    return tuple(a if index == last else net.activation(a) for index, a in enumerate(activity.preactivations))


def reconstruction_error(kernel: Array, x: Array) -> Array:
    """Mean ``‖x − (x W) Wᵀ‖²`` over the batch: the error PCA (and Oja's rule, for one unit) minimises."""
    return jnp.mean(jnp.sum((x - (x @ kernel) @ kernel.T) ** 2, axis=-1))


@register_rule("parameterized_plasticity", conformance=lambda: oja_principal_component_problem())
def parameterized_plasticity(
    net: Network, *, basis: str = "polynomial", coefficients: Any = None, plasticity_rate: float = 1.0
) -> LearningRule:
    """A generic local rule over a documented basis (Confavreux et al. 2020; Najarro & Risi 2020).

    ΔW_ij = η Σ_k θ_k ⟨m^δ_k x_i^α_k y_j^β_k⟩ W_ij^γ_k; updates = −ΔW (gradient sign), bias updates are zero.
    ``coefficients=None`` is the basis default: Oja's rule for ``"polynomial"``, Hebb for the ABCD bases.
    """
    terms_basis = get_basis(basis)
    theta = coefficient_vector(terms_basis, coefficients)

    def init(key, params):
        del key, params
        return EmptyState()

    def update(params, state, batch, *, key):
        del key
        outputs, activity = net.apply(params, batch.x)
        modulator = getattr(batch, "modulator", None)
        if modulator is None:
            modulator = jnp.ones(batch.x.shape[:1], batch.x.dtype)
        updates = []
        for layer, pre, post in zip(params, activity.inputs, _postsynaptic(net, activity)):
            terms = plasticity_terms(terms_basis, pre, post, layer["kernel"], modulator)
            change = plasticity_rate * jnp.tensordot(theta, terms, axes=1)
            updates.append({"kernel": (-change).astype(layer["kernel"].dtype), "bias": jnp.zeros_like(layer["bias"])})
        if hasattr(batch, "y"):
            metrics = {"loss": softmax_cross_entropy(outputs, batch.y)}
        else:
            metrics = {"reconstruction_error": reconstruction_error(params[-1]["kernel"], activity.inputs[-1])}
        return tuple(updates), state, metrics

    return LearningRule(init, update)


def oja_principal_component_problem() -> ConformanceProblem:
    """The conformance problem: one linear unit with Oja's coefficients must reduce its reconstruction error.

    Inputs are Gaussian with a fixed covariance whose leading eigenvalue stands well apart
    (``rulelab.meta.principal_component.fixed_task``); the rule is unsupervised, so the supervised teacher–student
    task does not apply.
    """
    from rulelab.meta.principal_component import fixed_task, sample_inputs
    from rulelab.nets.mlp import mlp

    task = fixed_task(num_inputs=8)
    net = mlp((8, 1), "linear")

    def sample_batch(key):
        x = sample_inputs(key, task, 32)
        return PlasticityBatch(x, jnp.ones((32,), x.dtype))

    def loss(params, batch):
        return reconstruction_error(params[0]["kernel"], batch.x)

    return ConformanceProblem(
        net, net.init, sample_batch, loss, {"basis": "polynomial", "coefficients": oja_coefficients()},
        learning_rate=0.02, steps=300, max_final_loss_ratio=0.7,
    )
