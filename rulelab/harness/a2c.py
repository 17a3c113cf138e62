"""Advantage actor-critic with backprop through time: the meta-learning rule of Wang et al. (2016, 2018).

For a trajectory segment with discounted returns G_t = r_t + γ d_t G_{t+1} (G_T = V(s_T), d_t = 0 at an episode
end) and advantages A_t = G_t − V_t, the loss averaged over time is

    L = ⟨ −log π(a_t | h_t) · sg(A_t) + β_V · ½ (G_t − V_t)² − β_H · H[π(· | h_t)] ⟩_t

and the update is ∂L/∂θ through the whole unrolled recurrence (Mnih et al. 2016's A3C loss, synchronous).
It is written as a ``LearningRule`` (gradient-signed updates, empty state) so that it and the three-factor rules
train the same agents in the same harness; its ``batch_update`` differentiates the batch-mean loss, so a batch of
episodes costs one backward pass with batched matrix products (see ``BatchedLearningRule``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rulelab.core import Array, EmptyState
from rulelab.harness.rl import BatchedLearningRule, Trajectory, unroll_trajectory
from rulelab.nets.recurrent import Agent


def discounted_returns(rewards: Array, discounts: Array, bootstrap_value: Array, discount: Array) -> Array:
    """G_t = r_t + γ d_t G_{t+1} with G_T = ``bootstrap_value``; inputs [T], output [T]."""

    def step(following, inputs):
        reward, continuation = inputs
        value = reward + discount * continuation * following
        return value, value

    _, returns = jax.lax.scan(step, bootstrap_value, (rewards, discounts), reverse=True)
    return returns


def policy_entropy(logits: Array) -> Array:
    """H[softmax(logits)] over the last axis."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def actor_critic_loss(agent: Agent, params, trajectory: Trajectory, *, discount, value_coef, entropy_coef):
    outputs, _, bootstrap = unroll_trajectory(agent, params, trajectory)
    returns = discounted_returns(trajectory.rewards, trajectory.discounts, jax.lax.stop_gradient(bootstrap.value),
                                 discount)
    advantages = returns - outputs.value
    log_probs = jax.nn.log_softmax(outputs.logits)
    chosen = jnp.take_along_axis(log_probs, trajectory.actions[:, None], axis=1)[:, 0]
    entropy = policy_entropy(outputs.logits)
    policy_loss = -jnp.mean(chosen * jax.lax.stop_gradient(advantages))
    value_loss = 0.5 * jnp.mean(advantages ** 2)
    loss = policy_loss + value_coef * value_loss - entropy_coef * jnp.mean(entropy)
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": jnp.mean(entropy)}


def a2c(agent: Agent, *, discount: float = 0.9, value_coef: float = 0.05,
        entropy_coef: float = 0.05) -> BatchedLearningRule:
    """A2C by BPTT (Wang et al. 2016: γ = 0.9, β_V = 0.05, β_H annealed to 0). Updates are ∂L/∂θ."""

    def loss(params, trajectory: Trajectory):
        return actor_critic_loss(agent, params, trajectory, discount=discount, value_coef=value_coef,
                                 entropy_coef=entropy_coef)

    def init(key, params):
        del key, params
        return EmptyState()

    def update(params, state, trajectory: Trajectory, *, key):
        del key
        (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params, trajectory)
        return grads, state, {"loss": value, **metrics}

    def batch_update(params, states, trajectories: Trajectory, *, keys):
        """∂/∂θ of the loss averaged over a batch of trajectories [B, T, ...] (= the mean of ``update``'s)."""
        del keys

        def batch_loss(params):
            values, metrics = jax.vmap(loss, (None, 0))(params, trajectories)
            return jnp.mean(values), {"loss": values, **metrics}

        (_, metrics), grads = jax.value_and_grad(batch_loss, has_aux=True)(params)
        return grads, states, metrics

    return BatchedLearningRule(init, update, batch_update)
