"""Actor-critic agents for RL tasks: an LSTM (Wang et al.'s meta-learner) and a linear critic (tabular TD).

Every agent is unbatched and pure (vmap over episodes outside). ``params`` is a dict with a ``"core"`` (whatever
turns inputs and carry into features ``h``) and two linear readouts, ``"policy"`` and ``"value"``:

    logits = h W_π + b_π,   V = h w_V + b_V

so a rule can train "the readouts only" by masking ``"core"``. The carry (recurrent state, fast weights) is what
the agent remembers within an episode; it is reset at every episode start.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Params, PRNGKey

Carry = Any
READOUTS = ("policy", "value")


class AgentOutput(NamedTuple):
    logits: Array  # [actions] policy logits
    value: Array  # [] state-value estimate V(s)


class Agent(NamedTuple):
    """A static actor-critic description with pure functions (one agent, no batch axis)."""

    num_inputs: int
    num_actions: int
    init: Callable[[PRNGKey], Params]  # {"core": ..., "policy": {kernel, bias}, "value": {kernel, bias}}
    initial_carry: Callable[[], Carry]
    apply: Callable[[Params, Carry, Array], tuple[AgentOutput, Carry]]  # (params, carry, inputs [I])


def readout_params(key: PRNGKey, num_features: int, num_actions: int, *, bias: bool = True) -> dict:
    """Policy and value readouts; small initial policy weights so the first policy is close to uniform."""
    policy_key, value_key = jax.random.split(key)
    scale = 1.0 / jnp.sqrt(num_features)
    readouts = {
        "policy": {"kernel": 0.1 * scale * jax.random.normal(policy_key, (num_features, num_actions))},
        "value": {"kernel": scale * jax.random.normal(value_key, (num_features,))},
    }
    if bias:
        readouts["policy"]["bias"] = jnp.zeros((num_actions,))
        readouts["value"]["bias"] = jnp.zeros(())
    return readouts


def apply_readouts(params: Params, features: Array) -> AgentOutput:
    """``logits = h W_π (+ b_π)``, ``V = h·w_V (+ b_V)``."""
    policy, value = params["policy"], params["value"]
    logits = features @ policy["kernel"] + policy.get("bias", 0.0)
    return AgentOutput(logits, features @ value["kernel"] + value.get("bias", 0.0))


class LSTMCarry(NamedTuple):
    hidden: Array  # h: [hidden]
    cell: Array  # c: [hidden]


def lstm_step(core: Params, carry: LSTMCarry, x: Array) -> LSTMCarry:
    """One LSTM step (Hochreiter & Schmidhuber 1997, with forget gates).

    [i, f, g, o] = x W_x + h W_h + b;  c' = σ(f) c + σ(i) tanh(g);  h' = σ(o) tanh(c')
    """
    gates = x @ core["input_kernel"] + carry.hidden @ core["recurrent_kernel"] + core["bias"]
    i, f, g, o = jnp.split(gates, 4)
    cell = jax.nn.sigmoid(f) * carry.cell + jax.nn.sigmoid(i) * jnp.tanh(g)
    return LSTMCarry(jax.nn.sigmoid(o) * jnp.tanh(cell), cell)


def lstm_agent(num_inputs: int, num_actions: int, hidden: int = 48) -> Agent:
    """Wang et al. (2016, 2018)'s meta-learner: an LSTM whose hidden state feeds policy and value readouts."""

    def init(key: PRNGKey) -> Params:
        input_key, recurrent_key, readout_key = jax.random.split(key, 3)
        bias = jnp.zeros((4 * hidden,)).at[hidden:2 * hidden].set(1.0)  # forget-gate bias 1 (Jozefowicz 2015)
        core = {
            "input_kernel": jax.nn.initializers.lecun_normal()(input_key, (num_inputs, 4 * hidden)),
            "recurrent_kernel": jax.nn.initializers.orthogonal()(recurrent_key, (hidden, 4 * hidden)),
            "bias": bias,
        }
        return {"core": core, **readout_params(readout_key, hidden, num_actions)}

    def initial_carry() -> LSTMCarry:
        return LSTMCarry(jnp.zeros((hidden,)), jnp.zeros((hidden,)))

    def apply(params: Params, carry: LSTMCarry, inputs: Array) -> tuple[AgentOutput, LSTMCarry]:
        carry = lstm_step(params["core"], carry, inputs)
        return apply_readouts(params, carry.hidden), carry

    return Agent(num_inputs, num_actions, init, initial_carry, apply)


def linear_agent(num_inputs: int, num_actions: int = 1) -> Agent:
    """A memoryless linear actor-critic without biases: V(x) = x·w, logits = x W.

    With one-hot inputs it is tabular; with a complete-serial-compound input it is the TD model of dopamine
    (Schultz, Dayan & Montague 1997). Weights start at zero.
    """

    def init(key: PRNGKey) -> Params:
        del key
        return {"core": {}, "policy": {"kernel": jnp.zeros((num_inputs, num_actions))},
                "value": {"kernel": jnp.zeros((num_inputs,))}}

    def apply(params: Params, carry: tuple, inputs: Array) -> tuple[AgentOutput, tuple]:
        return apply_readouts(params, inputs), carry

    return Agent(num_inputs, num_actions, init, lambda: (), apply)


def unroll(agent: Agent, params: Params, carry: Carry, inputs: Array) -> tuple[AgentOutput, Carry]:
    """Run ``agent`` over ``inputs`` [T, I] from ``carry``; outputs have a leading time axis [T, ...]."""

    def step(carry, x):
        output, carry = agent.apply(params, carry, x)
        return carry, output

    carry, outputs = jax.lax.scan(step, carry, inputs)
    return outputs, carry


AGENTS: dict[str, Callable[..., Agent]] = {"lstm": lstm_agent, "linear": linear_agent}
