"""Cost of one training step of each rule relative to backprop on the same network (jitted, medians).

    python benchmarks/rule_step_cost.py                          # digits-sized MLP 64-128-128-10, batch 32
    python benchmarks/rule_step_cost.py --sizes 784,256,256,10 --batch-size 128

A step is ``rule.update`` + an Adam update + ``apply_updates``, jitted, on fixed parameters and a fixed batch. Rules
are timed in interleaved rounds (every rule once per round) so a change in the machine's load hits all of them;
each entry is the median over rounds of the process CPU time per step (the work this process did, whatever else
the shared machine runs), with the wall time beside it.

For predictive coding the question is what the inner loop costs. ``inference_step_matmuls`` times T iterations of
exactly the matrix products one PC inference step does (a prediction ``f(v_{l-1}) W_l`` and an error feedback
``ε_{l+1} W_{l+1}ᵀ`` per layer) and nothing else, so ``pc_overhead = PC(T) / (backprop + T·matmuls)`` says how
close PC comes to the cost of its unavoidable matrix products (1.0 = no overhead). pcx (Pinchetti et al. 2024)
reports PC 3.9–7.6× slower than backprop per epoch on VGG networks; the JSON puts our T = 5 ratio beside it.
Writes benchmarks/results/rule_step_cost.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from measure import format_table, run_context, timed, write_result
import rulelab
from rulelab.core import Batch

PCX_REPORTED_SLOWDOWN = (3.9, 7.6)  # PC / BP time per epoch on VGG-5..7 (Pinchetti et al. 2024, pcx)
INFERENCE_STEPS = (1, 5, 20, 50)

# label -> (registered rule, hyperparameters)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "backprop": ("backprop", {}),
    "feedback_alignment": ("feedback_alignment", {}),
    **{f"predictive_coding T={t}": ("predictive_coding", {"inference_steps": t}) for t in INFERENCE_STEPS},
    "predictive_coding_fixed_prediction": ("predictive_coding_fixed_prediction", {}),
    "predictive_coding incremental T=20": ("predictive_coding", {"variant": "incremental"}),
    "equilibrium_propagation": ("equilibrium_propagation", {}),
    "burstprop": ("burstprop", {}),
    "burstccn": ("burstccn", {}),
}


def step_call(net, rule_name: str, hyperparameters: dict, batch: Batch) -> Callable[[], None]:
    """A warmed-up, blocking call of one jitted training step of ``rule_name``."""
    rule = rulelab.make_rule(rule_name, net, **hyperparameters)
    optimizer = optax.adam(1e-3)
    params = net.init(jax.random.key(0))
    carry = (params, rule.init(jax.random.key(1), params), optimizer.init(params))

    @jax.jit
    def step(params, rule_state, opt_state, batch):
        updates, rule_state, _ = rule.update(params, rule_state, batch, key=jax.random.key(2))
        steps, opt_state = optimizer.update(updates, opt_state, params)
        return optax.apply_updates(params, steps), rule_state, opt_state

    jax.block_until_ready(step(*carry, batch))
    return lambda: jax.block_until_ready(step(*carry, batch))


def inference_matmul_call(net, batch_size: int, steps: int) -> Callable[[], None]:
    """T iterations of the matrix products of one PC inference step, and nothing else."""
    params = net.init(jax.random.key(0))
    keys = jax.random.split(jax.random.key(3), net.num_layers)
    values = tuple(jax.random.normal(k, (batch_size, n)) for k, n in zip(keys, net.sizes[1:]))

    @jax.jit
    def products(values):
        def body(_, values):
            predictions = [v @ layer["kernel"] for v, layer in zip(values[:-1], params[1:])]  # shapes of values[1:]
            feedback = [e @ layer["kernel"].T for e, layer in zip(values[1:], params[1:])]  # shapes of values[:-1]
            incoming = [jnp.zeros_like(values[0]), *predictions]
            outgoing = [*feedback, jnp.zeros_like(values[-1])]
            return tuple(v + 1e-3 * (i - o) for v, i, o in zip(values, incoming, outgoing))

        return jax.lax.fori_loop(0, steps, body, values)

    jax.block_until_ready(products(values))
    return lambda: jax.block_until_ready(products(values))


def interleaved_medians(calls: dict[str, Callable[[], None]], *, rounds: int, calls_per_round: int) -> dict:
    """Per label: median over rounds of (CPU seconds, wall seconds) per call."""
    samples: dict[str, list] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            timings = [timed(call) for _ in range(calls_per_round)]
            samples[label].append((sum(t.cpu_s for t in timings) / calls_per_round,
                                   sum(t.wall_s for t in timings) / calls_per_round))
    return {
        label: {"cpu_ms": 1e3 * statistics.median(c for c, _ in s), "wall_ms": 1e3 * statistics.median(w for _, w in s)}
        for label, s in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128,128,10", help="MLP layer sizes (default: digits 64,128,128,10)")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls-per-round", type=int, default=20)
    parser.add_argument("--name", default="rule_step_cost", help="results file name (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    net = rulelab.mlp(sizes, args.activation)
    key_x, key_y = jax.random.split(jax.random.key(4))
    batch = Batch(jax.random.uniform(key_x, (args.batch_size, sizes[0])),
                  jax.random.randint(key_y, (args.batch_size,), 0, sizes[-1]))

    calls = {label: step_call(net, name, hp, batch) for label, (name, hp) in CASES.items()}
    calls.update({f"inference_step_matmuls T={t}": inference_matmul_call(net, args.batch_size, t)
                  for t in INFERENCE_STEPS})
    medians = interleaved_medians(calls, rounds=args.rounds, calls_per_round=args.calls_per_round)

    backprop = medians["backprop"]["cpu_ms"]
    rows = []
    for label, timing in medians.items():
        row = {"case": label, **timing}
        if label in CASES:
            row["cpu_ratio_to_backprop"] = timing["cpu_ms"] / backprop
            row["wall_ratio_to_backprop"] = timing["wall_ms"] / medians["backprop"]["wall_ms"]
        rows.append(row)
    overhead = {
        t: medians[f"predictive_coding T={t}"]["cpu_ms"] / (backprop + medians[f"inference_step_matmuls T={t}"]["cpu_ms"])
        for t in INFERENCE_STEPS
    }
    # marginal cost of one inference step, from the T = 5 and T = 50 runs
    per_step = (medians["predictive_coding T=50"]["cpu_ms"] - medians["predictive_coding T=5"]["cpu_ms"]) / 45
    summary = {
        "pc_overhead_vs_backprop_plus_T_matmul_steps": {str(t): v for t, v in overhead.items()},
        "pc_marginal_cost_per_inference_step_in_backprop_steps": per_step / backprop,
        "pc_T5_ratio_to_backprop": medians["predictive_coding T=5"]["cpu_ms"] / backprop,
        "pcx_reported_pc_to_bp_ratio": list(PCX_REPORTED_SLOWDOWN),
    }
    result = {
        "benchmark": "rule_step_cost",
        "network": {"sizes": list(sizes), "activation": args.activation, "batch_size": args.batch_size},
        "method": "jitted rule.update + adam step; median over interleaved rounds of per-call process CPU time",
        "rounds": args.rounds,
        "calls_per_round": args.calls_per_round,
        "context": run_context(),
        "results": rows,
        "summary": summary,
    }
    path = write_result(args.name, result)
    print(format_table(rows, [("case", "case", "s"), ("cpu_ms", "cpu ms", ".3f"), ("wall_ms", "wall ms", ".3f"),
                              ("cpu_ratio_to_backprop", "× backprop", ".2f")]))
    print({k: (v if not isinstance(v, dict) else {t: round(x, 2) for t, x in v.items()}) for k, v in summary.items()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
