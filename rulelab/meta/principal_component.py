"""The principal-component problem of Confavreux et al. (2020): a plasticity rule that makes one linear unit
extract the first principal component of its inputs.

A task is a zero-mean Gaussian input distribution ``x = z Mᵀ`` (``z ~ N(0, I)``, covariance ``C = M Mᵀ``) with a
random orientation and a leading eigenvalue well separated from the rest. A linear unit ``y = w·x`` starts from a
random ``w`` and learns with a candidate rule for a fixed number of steps; the rule's loss on the task is

    ℓ(w_T) = (1 − cos²(w_T, u₁)) + (‖w_T‖² − 1)²

with ``u₁`` the leading eigenvector: the unit must point along ``±u₁`` with unit norm. Oja's rule
(``Δw = η(x y − y² w)``, Oja 1982) drives ``w`` to exactly that, and averaged over random spectra the unit-norm
term pins the ratio of its two coefficients, so Oja's rule is the answer meta-learning should recover.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, PRNGKey
from rulelab.meta.inner import train_with_rule
from rulelab.nets.mlp import mlp
from rulelab.registry import make_rule
from rulelab.rules.parameterized_plasticity import PlasticityBatch, get_basis


class PrincipalComponentTask(NamedTuple):
    mixing: Array  # [inputs, inputs] M; covariance M Mᵀ
    principal_component: Array  # [inputs] unit-norm leading eigenvector u₁


def random_rotation(key: PRNGKey, size: int) -> Array:
    """A Haar-random orthogonal matrix ``[size, size]`` (QR of a Gaussian matrix with the sign fixed)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (size, size)))
    return q * jnp.sign(jnp.diag(r))[None, :]


def task_from_spectrum(rotation: Array, variances: Array) -> PrincipalComponentTask:
    """Covariance ``R diag(variances) Rᵀ``; ``variances[0]`` must be the largest."""
    return PrincipalComponentTask(rotation * jnp.sqrt(variances)[None, :], rotation[:, 0])


def sample_task(
    key: PRNGKey,
    num_inputs: int,
    *,
    leading_variance: tuple[float, float] = (1.0, 2.0),
    other_variance: tuple[float, float] = (0.1, 0.5),
) -> PrincipalComponentTask:
    """A random task: random orientation, leading variance and the rest drawn uniformly from the given ranges."""
    rotation_key, leading_key, other_key = jax.random.split(key, 3)
    leading = jax.random.uniform(leading_key, (1,), minval=leading_variance[0], maxval=leading_variance[1])
    others = jax.random.uniform(other_key, (num_inputs - 1,), minval=other_variance[0], maxval=other_variance[1])
    return task_from_spectrum(random_rotation(rotation_key, num_inputs), jnp.concatenate([leading, others]))


def fixed_task(num_inputs: int) -> PrincipalComponentTask:
    """A fixed task (variances 4, then 0.25 each; orientation from key 0), e.g. for the conformance suite."""
    variances = jnp.concatenate([jnp.array([4.0]), jnp.full((num_inputs - 1,), 0.25)])
    return task_from_spectrum(random_rotation(jax.random.key(0), num_inputs), variances)


def sample_inputs(key: PRNGKey, task: PrincipalComponentTask, batch_size: int) -> Array:
    """``[batch_size, inputs]`` samples of the task's input distribution."""
    return jax.random.normal(key, (batch_size, task.mixing.shape[0])) @ task.mixing.T


def squared_alignment(weight: Array, direction: Array) -> Array:
    """``cos²`` of the angle between ``weight`` and ``direction`` (sign-free: ±u₁ are both principal)."""
    return jnp.vdot(weight, direction) ** 2 / (jnp.vdot(weight, weight) * jnp.vdot(direction, direction))


def principal_component_loss(weight: Array, task: PrincipalComponentTask) -> Array:
    """``(1 − cos²(w, u₁)) + (‖w‖² − 1)²``: zero exactly when ``w = ±u₁``."""
    return (1.0 - squared_alignment(weight, task.principal_component)) + (jnp.vdot(weight, weight) - 1.0) ** 2


@dataclasses.dataclass(frozen=True)
class PrincipalComponentMetaConfig:
    """Static settings of the meta-learning problem (the coefficients are the only meta-parameters)."""

    num_inputs: int = 5
    num_tasks: int = 16  # tasks averaged in one meta-loss evaluation
    inner_steps: int = 200
    inner_batch_size: int = 4
    inner_learning_rate: float = 0.05
    basis: str = "polynomial"
    weight_bound: float | None = 2.0  # synapses are clipped to [-bound, bound] after every step (None: unbounded)
    sparsity_penalty: float = 0.0  # λ of the parsimony term λ Σ_k |θ_k| added to the meta-loss
    truncation: int | None = None
    checkpoint_every: int | None = None


TaskTrainer = Callable[[Array, PRNGKey], tuple[Array, PrincipalComponentTask]]


def make_task_trainer(config: PrincipalComponentMetaConfig) -> TaskTrainer:
    """``train_on_task(coefficients, key) -> (w_T [inputs], task)``: one random task learned by the rule."""
    get_basis(config.basis)
    net = mlp((config.num_inputs, 1), "linear")
    bound = config.weight_bound
    constrain = None if bound is None else partial(jax.tree.map, lambda w: jnp.clip(w, -bound, bound))

    def train_on_task(coefficients: Array, key: PRNGKey) -> tuple[Array, PrincipalComponentTask]:
        task_key, init_key, train_key = jax.random.split(key, 3)
        task = sample_task(task_key, config.num_inputs)
        rule = make_rule("parameterized_plasticity", net, basis=config.basis, coefficients=coefficients)

        def sample_batch(batch_key):
            x = sample_inputs(batch_key, task, config.inner_batch_size)
            return PlasticityBatch(x, jnp.ones(x.shape[:1], x.dtype))

        params, _ = train_with_rule(
            rule, net.init(init_key), sample_batch, train_key,
            steps=config.inner_steps, learning_rate=config.inner_learning_rate, constrain=constrain,
            truncation=config.truncation, checkpoint_every=config.checkpoint_every,
        )
        return params[0]["kernel"][:, 0], task

    return train_on_task


def make_meta_loss(config: PrincipalComponentMetaConfig) -> Callable[[dict[str, Array], PRNGKey], Array]:
    """``meta_loss({"coefficients": θ}, key)``: the mean task loss over ``config.num_tasks`` random tasks, plus
    ``config.sparsity_penalty · Σ_k |θ_k|`` (a preference for the simplest rule among equally good ones)."""
    train_on_task = make_task_trainer(config)

    def task_loss(coefficients: Array, key: PRNGKey) -> Array:
        weight, task = train_on_task(coefficients, key)
        return principal_component_loss(weight, task)

    def meta_loss(meta_params: dict[str, Array], key: PRNGKey) -> Array:
        keys = jax.random.split(key, config.num_tasks)
        coefficients = meta_params["coefficients"]
        task_losses = jax.vmap(task_loss, in_axes=(None, 0))(coefficients, keys)
        return jnp.mean(task_losses) + config.sparsity_penalty * jnp.sum(jnp.abs(coefficients))

    return meta_loss


def make_rule_evaluator(
    config: PrincipalComponentMetaConfig, num_tasks: int
) -> Callable[[Any, PRNGKey], dict[str, Array]]:
    """``evaluate(coefficients, key)``: per-task ``alignment`` |cos(w_T, u₁)|, ``weight_norm`` ‖w_T‖ and ``loss``
    on ``num_tasks`` fresh tasks (compiled once for every coefficient vector)."""
    train_on_task = make_task_trainer(config)

    def one(coefficients, key):
        weight, task = train_on_task(coefficients, key)
        return {
            "alignment": jnp.sqrt(squared_alignment(weight, task.principal_component)),
            "weight_norm": jnp.linalg.norm(weight),
            "loss": principal_component_loss(weight, task),
        }

    @jax.jit
    def evaluate(coefficients, key):
        return jax.vmap(one, in_axes=(None, 0))(coefficients, jax.random.split(key, num_tasks))

    return lambda coefficients, key: evaluate(jnp.asarray(coefficients, jnp.float32), key)
