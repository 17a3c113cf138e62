"""Backpropamine: differentiable neuromodulated Hebbian plasticity (Miconi, Rawal, Clune & Stanley 2019, ICLR).

A recurrent network whose recurrent weights have a fixed part W and a plastic part α ⊙ Hebb. The Hebbian trace
lives in the carry (it is reset each episode), grows with pre·post coincidences and is gated by a neuromodulatory
signal M(t) that the network itself outputs:

    h_t      = tanh(x_t W_in + h_{t−1} (W + α ⊙ Hebb_t) + b)
    M_t      = tanh(h_t · w_M + b_M)
    simple:      Hebb_{t+1} = clip(Hebb_t + M_t · h_{t−1} ⊗ h_t, −1, 1)
    retroactive: Hebb_{t+1} = clip(Hebb_t + M_t · E_t, −1, 1),   E_{t+1} = (1 − η) E_t + η h_{t−1} ⊗ h_t

W_in, W, α, b, w_M, b_M and η (as a logit) are slow parameters meta-trained by backprop through the episodes
(here with A2C, as for the LSTM); within an episode only Hebb and E change. Written from the paper's equations.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rulelab.core import Array, Params, PRNGKey
from rulelab.nets.recurrent import Agent, AgentOutput, apply_readouts, readout_params

NEUROMODULATION = ("simple", "retroactive")


class PlasticCarry(NamedTuple):
    hidden: Array  # h: [hidden]
    hebb: Array  # Hebb: [hidden, hidden], presynaptic × postsynaptic
    eligibility: Array  # E: [hidden, hidden] (stays zero for "simple")


def hebbian_increment(core: Params, carry: PlasticCarry, hidden: Array, modulation: Array, neuromodulation: str):
    """New (Hebb, E) after a step with presynaptic ``carry.hidden`` and postsynaptic ``hidden``."""
    coincidence = jnp.outer(carry.hidden, hidden)
    if neuromodulation == "simple":
        return jnp.clip(carry.hebb + modulation * coincidence, -1.0, 1.0), carry.eligibility
    rate = jax.nn.sigmoid(core["eligibility_rate_logit"])
    hebb = jnp.clip(carry.hebb + modulation * carry.eligibility, -1.0, 1.0)
    return hebb, (1.0 - rate) * carry.eligibility + rate * coincidence


def plastic_step(core: Params, carry: PlasticCarry, x: Array, neuromodulation: str) -> PlasticCarry:
    """One step of the plastic recurrent layer and its neuromodulated Hebbian update."""
    recurrent = core["recurrent_kernel"] + core["plasticity"] * carry.hebb
    hidden = jnp.tanh(x @ core["input_kernel"] + carry.hidden @ recurrent + core["bias"])
    modulation = jnp.tanh(hidden @ core["modulator"]["kernel"] + core["modulator"]["bias"])
    hebb, eligibility = hebbian_increment(core, carry, hidden, modulation, neuromodulation)
    return PlasticCarry(hidden, hebb, eligibility)


def backpropamine_agent(num_inputs: int, num_actions: int, hidden: int = 48,
                        neuromodulation: str = "retroactive") -> Agent:
    """An actor-critic whose recurrent layer has neuromodulated plastic weights (readouts as in the LSTM)."""
    if neuromodulation not in NEUROMODULATION:
        raise ValueError(f"unknown neuromodulation {neuromodulation!r}; valid: {', '.join(NEUROMODULATION)}")

    def init(key: PRNGKey) -> Params:
        input_key, recurrent_key, plasticity_key, modulator_key, readout_key = jax.random.split(key, 5)
        core = {
            "input_kernel": jax.nn.initializers.lecun_normal()(input_key, (num_inputs, hidden)),
            "recurrent_kernel": jax.nn.initializers.orthogonal(0.9)(recurrent_key, (hidden, hidden)),
            "plasticity": 0.01 * jax.random.normal(plasticity_key, (hidden, hidden)),
            "bias": jnp.zeros((hidden,)),
            "modulator": {"kernel": jax.random.normal(modulator_key, (hidden,)) / jnp.sqrt(hidden),
                          "bias": jnp.zeros(())},
            "eligibility_rate_logit": jnp.asarray(-2.0),  # η ≈ 0.12
        }
        return {"core": core, **readout_params(readout_key, hidden, num_actions)}

    def initial_carry() -> PlasticCarry:
        return PlasticCarry(jnp.zeros((hidden,)), jnp.zeros((hidden, hidden)), jnp.zeros((hidden, hidden)))

    def apply(params: Params, carry: PlasticCarry, inputs: Array) -> tuple[AgentOutput, PlasticCarry]:
        carry = plastic_step(params["core"], carry, inputs, neuromodulation)
        return apply_readouts(params, carry.hidden), carry

    return Agent(num_inputs, num_actions, init, initial_carry, apply)
