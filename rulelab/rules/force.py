"""Readout rules for a rate reservoir (``rulelab.nets.reservoir``): FORCE, least mean squares, and a BPTT baseline.

The harness runs the reservoir in closed loop for a segment of ``K`` steps with the current readout and hands the
rule a ``ReservoirBatch``: the state at the segment's start, the rates it produced and the targets. Updates are
gradient-signed and shaped like ``ReservoirParams``; readout rules return zeros for the fixed recurrent and feedback
weights. FORCE is exact with plain SGD at learning rate 1 (its step size lives in ``P``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, ConformanceProblem, EmptyState, LearningRule
from rulelab.nets.reservoir import Reservoir, ReservoirParams, reservoir
from rulelab.registry import register_rule


class ReservoirBatch(NamedTuple):
    """One closed-loop segment of ``K`` steps."""

    start_state: Array  # x at the segment's first step: [N]
    rates: Array  # r_t = tanh(x_t): [K, N]
    targets: Array  # f_t: [K, outputs]


def readout_errors(params: ReservoirParams, batch: ReservoirBatch) -> Array:
    """``e_t = r_t w − f_t`` for every step of the segment: [K, outputs]."""
    return batch.rates @ params.readout - batch.targets


def readout_loss(params: ReservoirParams, batch: ReservoirBatch) -> Array:
    """Mean squared readout error on the segment's recorded rates (teacher-forced, no dynamics)."""
    return jnp.mean(readout_errors(params, batch) ** 2)


def readout_only(params: ReservoirParams, readout_update: Array) -> ReservoirParams:
    """Updates that change only the readout."""
    return ReservoirParams(jnp.zeros_like(params.recurrent), jnp.zeros_like(params.feedback), readout_update)


class ForceState(NamedTuple):
    inverse_correlation: Array  # P = (α I + Σ_t r_tᵀ r_t)⁻¹: [N, N]


def recursive_least_squares(inverse_correlation: Array, rates: Array, errors: Array) -> tuple[Array, Array]:
    """Block RLS step: fold the rows ``rates`` [K, N] into ``P`` and return ``(P', P' Rᵀ E)``.

    P' = P − P Rᵀ (I + R P Rᵀ)⁻¹ R P (Woodbury), and ``P' Rᵀ E = P Rᵀ (I + R P Rᵀ)⁻¹ E`` is the gradient-signed
    readout step. For K = 1 this is Sussillo & Abbott's rank-one update; any split of the same rows into blocks
    gives the same ``P'`` and readout, the exact regularised least-squares solution of all rows seen.
    """
    rates_p = rates @ inverse_correlation  # R P: [K, N]
    innovation = jnp.eye(rates.shape[0], dtype=rates.dtype) + rates_p @ rates.T  # I + R P Rᵀ: [K, K]
    gain = jnp.linalg.solve(innovation, rates_p)  # (I + R P Rᵀ)⁻¹ R P: [K, N]
    new_p = inverse_correlation - rates_p.T @ gain
    new_p = 0.5 * (new_p + new_p.T)  # cancel float32 round-off that would otherwise accumulate over long runs
    return new_p, gain.T @ errors


@register_rule("force", conformance=lambda: readout_problem(learning_rate=1.0, steps=60))
def force(net: Reservoir, *, alpha: float = 1.0) -> LearningRule:
    """FORCE learning with recursive least squares (Sussillo & Abbott 2009, Neuron 63:544, eqs. 4–5).

    e⁻_t = r_t w − f_t,   P_t = P − P r_tᵀ r_t P / (1 + r_t P r_tᵀ),   Δw = −P_t r_tᵀ e⁻_t,   P_0 = I / α.
    After any data the readout is the minimiser of Σ_t |r_t w − f_t|² + α |w − w_0|² (regularised least squares).
    Apply with SGD at learning rate 1.
    """
    del net

    def init(key, params: ReservoirParams):
        del key
        size = params.readout.shape[0]
        return ForceState(jnp.eye(size, dtype=params.readout.dtype) / alpha)

    def update(params: ReservoirParams, state: ForceState, batch: ReservoirBatch, *, key):
        del key
        errors = readout_errors(params, batch)
        inverse_correlation, step = recursive_least_squares(state.inverse_correlation, batch.rates, errors)
        return readout_only(params, step), ForceState(inverse_correlation), {"loss": jnp.mean(errors**2)}

    return LearningRule(init, update)


@register_rule("lms_readout", conformance=lambda: readout_problem(learning_rate=0.1, steps=300))
def lms_readout(net: Reservoir) -> LearningRule:
    """Least mean squares on the readout (Widrow & Hoff 1960): Δw = −η Rᵀ E / K, the gradient of ½ mean |e_t|².

    The step size η is the optimizer's learning rate; with fed-back output it must keep errors small from the
    first step, which FORCE's adaptive ``P`` does and a fixed η does only in a narrow range.
    """
    del net

    def init(key, params):
        del key, params
        return EmptyState()

    def update(params: ReservoirParams, state, batch: ReservoirBatch, *, key):
        del key
        errors = readout_errors(params, batch)
        step = batch.rates.T @ errors / batch.rates.shape[0]
        return readout_only(params, step), state, {"loss": jnp.mean(errors**2)}

    return LearningRule(init, update)


def closed_loop_loss(net: Reservoir, params: ReservoirParams, batch: ReservoirBatch) -> Array:
    """Mean squared error of the free-running output over the segment, re-simulated from its start state."""
    _, _, outputs = net.run(params, batch.start_state, batch.targets.shape[0])
    return jnp.mean((outputs - batch.targets) ** 2)


@register_rule("reservoir_bptt", conformance=lambda: closed_loop_problem())
def reservoir_bptt(net: Reservoir, *, train_recurrent: bool = False) -> LearningRule:
    """Truncated backpropagation through time (Werbos 1990) through the closed loop, over one segment.

    ΔW = ∂/∂W (1/K) Σ_t |z_t − f_t|², z_t simulated from the segment's start state with the output fed back;
    gradients flow through the feedback loop. Only the readout is trained unless ``train_recurrent``.
    """

    def init(key, params):
        del key, params
        return EmptyState()

    def update(params: ReservoirParams, state, batch: ReservoirBatch, *, key):
        del key

        def loss_fn(trained):
            return closed_loop_loss(net, trained, batch)

        if train_recurrent:
            loss, grads = jax.value_and_grad(loss_fn)(params)
        else:
            loss, readout_grad = jax.value_and_grad(lambda w: loss_fn(params._replace(readout=w)))(params.readout)
            grads = readout_only(params, readout_grad)
        return grads, state, {"loss": loss}

    return LearningRule(init, update)


# Conformance problems: small, fixed reservoirs on which tests/test_conformance.py checks each rule.
_CONFORMANCE_SIZE, _CONFORMANCE_OUTPUTS, _CONFORMANCE_SEGMENT = 16, 2, 8


def _teacher_readout(key) -> Array:
    return jax.random.normal(key, (_CONFORMANCE_SIZE, _CONFORMANCE_OUTPUTS)) / jnp.sqrt(_CONFORMANCE_SIZE)


def readout_problem(*, learning_rate: float, steps: int) -> ConformanceProblem:
    """Regress targets ``r w*`` from random tanh rates: a linear teacher any readout rule should recover."""
    net = reservoir(_CONFORMANCE_SIZE, _CONFORMANCE_OUTPUTS)
    teacher = _teacher_readout(jax.random.key(1234))

    def sample_batch(key):
        rates = jnp.tanh(jax.random.normal(key, (_CONFORMANCE_SEGMENT, _CONFORMANCE_SIZE)))
        return ReservoirBatch(jnp.zeros(_CONFORMANCE_SIZE), rates, rates @ teacher)

    return ConformanceProblem(net, net.init, sample_batch, readout_loss, {}, learning_rate=learning_rate,
                              steps=steps, max_final_loss_ratio=0.1)


def closed_loop_problem() -> ConformanceProblem:
    """Match a teacher readout's closed-loop output from random start states (same fixed reservoir)."""
    net = reservoir(_CONFORMANCE_SIZE, _CONFORMANCE_OUTPUTS)
    base = net.init(jax.random.key(4321), gain=0.9, feedback_scale=0.5)
    teacher = base._replace(readout=_teacher_readout(jax.random.key(1234)))

    def init_params(key):
        del key  # the problem is about the readout; every student shares the teacher's reservoir
        return base

    def sample_batch(key):
        start = net.initial_state(key)
        _, _, targets = net.run(teacher, start, _CONFORMANCE_SEGMENT)
        return ReservoirBatch(start, jnp.zeros((_CONFORMANCE_SEGMENT, _CONFORMANCE_SIZE)), targets)

    def loss(params, batch):
        return closed_loop_loss(net, params, batch)

    return ConformanceProblem(net, init_params, sample_batch, loss, {}, learning_rate=0.5, steps=300,
                              max_final_loss_ratio=0.3)
