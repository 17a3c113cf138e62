"""Where a harness step's time goes: a bare training step versus the harness's guarded step and its evaluation.

    taskset -c 0 python benchmarks/step_overhead.py          # one core, as one host device of the harness runs

For the digits MLP 64-128-128-10 with Adam, batch 32, ``R`` runs vmapped (default 1 and 4) for 500 steps:
- ``bare``: sample a batch, ``value_and_grad``, Adam, nothing else;
- ``guarded``: the same plus the harness's divergence guard (finiteness of the loss and of the new parameters,
  and a masked update of parameters and optimizer state so a diverged run stays frozen);
- ``harness``: the harness's own ``TrainProgram`` (backprop rule, guard, one evaluation per 100 steps).
Examples per second, medians of 5 calls after compilation; JSON in benchmarks/results/step_overhead.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import optax

from measure import format_table, run_context, write_result
from rulelab.core import softmax_cross_entropy, tree_all_finite
from rulelab.harness.run import seed_keys
from rulelab.harness.train import TrainConfig, make_train_program
from rulelab.nets.mlp import mlp
from rulelab.tasks.supervised import load_dataset

STEPS, BATCH, EVAL_EVERY = 500, 32, 100


def bare_run(key, *, net, x, y, guarded: bool):
    optimizer = optax.adam(1e-3)
    params = net.init(key)

    def step(carry, _):
        params, opt_state, key = carry
        key, batch_key = jax.random.split(key)
        index = jax.random.randint(batch_key, (BATCH,), 0, x.shape[0])
        loss, grads = jax.value_and_grad(
            lambda p: softmax_cross_entropy(net.apply(p, x[index])[0], y[index]))(params)
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if guarded:
            healthy = jnp.isfinite(loss) & tree_all_finite(new_params)
            new_params, new_opt_state = jax.tree.map(lambda new, old: jnp.where(healthy, new, old),
                                                     (new_params, new_opt_state), (params, opt_state))
        return (new_params, new_opt_state, key), loss

    return jax.lax.scan(step, (params, optimizer.init(params), key), None, length=STEPS)[1]


def examples_per_second(run, runs: int, repeats: int) -> float:
    keys = seed_keys(runs)
    compiled = jax.jit(jax.vmap(run))
    jax.block_until_ready(compiled(keys))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        seconds.append(time.perf_counter() - start)
    return runs * STEPS * BATCH / statistics.median(seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="1,4")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    dataset = load_dataset("digits")
    net = mlp((64, 128, 128, 10))
    x, y = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    program = make_train_program(TrainConfig(steps=STEPS, eval_every=EVAL_EVERY), dataset)

    def harness_run(key):
        hparams = {"learning_rate": jnp.asarray(1e-3)}
        return program.run(program.init(key, hparams), hparams, num_evals=program.num_evals)[1]["train_loss"]

    contenders = {"bare": partial(bare_run, net=net, x=x, y=y, guarded=False),
                  "guarded": partial(bare_run, net=net, x=x, y=y, guarded=True), "harness": harness_run}
    context = run_context()
    rows = []
    for runs in [int(r) for r in args.runs.split(",")]:
        rates = {name: examples_per_second(run, runs, args.repeats) for name, run in contenders.items()}
        for name, rate in rates.items():
            rows.append({"runs": runs, "variant": name, "examples_per_s": rate, "vs_bare": rate / rates["bare"]})
    table = [("runs", "runs", "d"), ("variant", "variant", "s"), ("examples_per_s", "ex/s", ".3g"),
             ("vs_bare", "× bare", ".2f")]
    print(format_table(rows, table))
    print(f"wrote {write_result('step_overhead', {'context': context, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
