"""Neuromodulated TD learning: a three-factor actor-critic rule with eligibility traces.

A global, dopamine-like TD error gates local eligibility traces (Sutton & Barto 2018, §12.7 and §13.5;
Schultz, Dayan & Montague 1997; Frémaux & Gerstner 2016 for the three-factor reading):

    δ_t   = r_t + γ d_t V(s_{t+1}) − V(s_t)                        (d_t = 0 where the episode ended)
    e^V_t = γλ d_{t−1} e^V_{t−1} + ∂V(s_t)/∂w
    e^π_t = γλ d_{t−1} e^π_{t−1} + ∂log π(a_t | s_t)/∂w
    Δw    = η δ_t (c_V e^V_t + c_π e^π_t) + η β_H ∂H[π(· | s_t)]/∂w

For linear readouts of features h these eligibilities are local pre·post products: ∂V/∂w_V = h and
∂log π(a)/∂W_π = h ⊗ (onehot(a) − π), i.e. presynaptic activity times the postsynaptic deviation. For the
recurrent core the derivative is taken with the incoming carry held fixed (one-step truncation, no BPTT), so the
rule stays online and local in time. With ``trainable="readouts"`` the core is frozen.

The rule consumes a ``Trajectory`` (harness/rl.py); weights are fixed within it and the returned update sums
−δ_t·e_t over its steps, so a one-step segment is the fully online rule. Traces are rule state: they carry over
between segments of an episode and are cut where an episode ends.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, ConformanceProblem, LearningRule, Params
from rulelab.harness.rl import Trajectory, unroll_trajectory
from rulelab.nets.recurrent import READOUTS, Agent
from rulelab.registry import register_rule

TRAINABLE = ("all", "readouts")


class TraceState(NamedTuple):
    value_trace: Params  # e^V, shaped like params
    policy_trace: Params  # e^π, shaped like params


def td_errors(rewards: Array, discounts: Array, values: Array, bootstrap_value: Array, discount: Array) -> Array:
    """δ_t = r_t + γ d_t V_{t+1} − V_t for a segment [T], with V_T = ``bootstrap_value``."""
    next_values = jnp.concatenate([values[1:], bootstrap_value[None]])
    return rewards + discount * discounts * next_values - values


def trainable_mask(params: Params, trainable: str) -> Params:
    """1 on trainable leaves, 0 on frozen ones (the core under ``trainable="readouts"``)."""
    return {name: jax.tree.map(lambda p: jnp.asarray(trainable == "all" or name in READOUTS, p.dtype), sub)
            for name, sub in params.items()}


def step_gradients(agent: Agent, params: Params, carry, inputs: Array, action: Array):
    """∂V, ∂log π(a) and ∂H with respect to params at one step, the carry held fixed."""

    def outputs(p):
        output, _ = agent.apply(p, carry, inputs)
        log_probs = jax.nn.log_softmax(output.logits)
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs)
        return jnp.stack([output.value, log_probs[action], entropy])

    _, pullback = jax.vjp(outputs, params)
    return jax.vmap(lambda cotangent: pullback(cotangent)[0])(jnp.eye(3))  # leaves [3, ...]


def accumulate_traces(gradients: Params, discounts: Array, initial: Params, decay: Array, weights: Array):
    """e_t = decay·e_{t−1} + g_t, cut after steps with d_t = 0; returns (Σ_t w_t e_t, e_T after the cut)."""

    def step(trace, inputs):
        gradient, continuation, weight = inputs
        trace = jax.tree.map(lambda e, g: decay * e + g, trace, gradient)
        weighted = jax.tree.map(lambda e: weight * e, trace)
        return jax.tree.map(lambda e: continuation * e, trace), weighted

    trace, weighted = jax.lax.scan(step, initial, (gradients, discounts, weights))
    return jax.tree.map(lambda w: jnp.sum(w, axis=0), weighted), trace


def neuromodulated_td_conformance() -> ConformanceProblem:
    """Tabular TD prediction on Sutton & Barto's 5-state random walk; loss = mean squared value error."""
    from rulelab.harness.rl import agent_policy, rollout, start_episode, to_trajectory
    from rulelab.nets.recurrent import linear_agent
    from rulelab.tasks.rl.random_walk import NUM_STATES, TRUE_VALUES, random_walk_task

    task = random_walk_task(steps_per_segment=16)
    agent = linear_agent(NUM_STATES, 1)
    policy = agent_policy(task, agent, agent.init(jax.random.key(0)))  # actions are ignored by the walk

    def sample_batch(key):
        start_key, run_key = jax.random.split(key)
        stream = start_episode(task, policy, start_key)
        final, records = rollout(task, policy, stream, run_key, task.episode_length)
        return to_trajectory(task, stream.policy_state, records, final.step_input)

    def loss(params, batch):
        del batch
        return jnp.mean((params["value"]["kernel"] - TRUE_VALUES) ** 2)

    return ConformanceProblem(agent, agent.init, sample_batch, loss, {"discount": 1.0, "trace_decay": 0.0},
                              learning_rate=0.05, steps=300, max_final_loss_ratio=0.3)


@register_rule("neuromodulated_td", conformance=neuromodulated_td_conformance)
def neuromodulated_td(net: Agent, *, discount: float = 0.9, trace_decay: float = 0.8, value_scale: float = 1.0,
                      policy_scale: float = 1.0, entropy_coef: float = 0.0, trainable: str = "all") -> LearningRule:
    """Three-factor actor-critic TD(λ): Δw = η δ (c_V e^V + c_π e^π) (+ entropy bonus), δ gating the traces.

    ``net`` is an ``Agent`` (rulelab.nets.recurrent); ``discount`` γ, ``trace_decay`` λ, ``value_scale`` c_V,
    ``policy_scale`` c_π, ``entropy_coef`` β_H may be traced. ``trainable``: "all" or "readouts".
    """
    if trainable not in TRAINABLE:
        raise ValueError(f"unknown trainable {trainable!r}; valid: {', '.join(TRAINABLE)}")

    def init(key, params):
        del key
        zeros = jax.tree.map(jnp.zeros_like, params)
        return TraceState(zeros, zeros)

    def update(params, state: TraceState, trajectory: Trajectory, *, key):
        del key
        outputs, carries, bootstrap = unroll_trajectory(net, jax.lax.stop_gradient(params), trajectory)
        deltas = td_errors(trajectory.rewards, trajectory.discounts, outputs.value, bootstrap.value, discount)
        gradients = jax.vmap(lambda c, x, a: step_gradients(net, params, c, x, a))(
            carries, trajectory.inputs, trajectory.actions)  # leaves [T, 3, ...]
        mask = trainable_mask(params, trainable)
        gradients = jax.tree.map(lambda g, m: g * m, gradients, mask)
        value_gradients = jax.tree.map(lambda g: g[:, 0], gradients)
        policy_gradients = jax.tree.map(lambda g: g[:, 1], gradients)
        entropy_gradient = jax.tree.map(lambda g: jnp.sum(g[:, 2], axis=0), gradients)
        decay = discount * trace_decay
        value_drive, value_trace = accumulate_traces(value_gradients, trajectory.discounts, state.value_trace,
                                                     decay, deltas)
        policy_drive, policy_trace = accumulate_traces(policy_gradients, trajectory.discounts, state.policy_trace,
                                                       decay, deltas)
        updates = jax.tree.map(lambda v, p, h: -(value_scale * v + policy_scale * p + entropy_coef * h),
                               value_drive, policy_drive, entropy_gradient)
        metrics = {"loss": 0.5 * jnp.mean(deltas ** 2), "td_error": deltas, "value": outputs.value}
        return updates, TraceState(value_trace, policy_trace), metrics

    return LearningRule(init, update)
