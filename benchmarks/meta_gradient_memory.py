#!/usr/bin/env python
"""Memory and time of one meta-gradient step against inner-loop length, with and without checkpointing.

The inner loop is the supervised harness (feedback alignment on digits, SGD); the meta-gradient is
d(final validation loss)/d(log feedback scale) by ``jax.grad`` through the unrolled run. Three ways to unroll:

- ``full``: plain reverse mode, every step's residuals kept (memory ∝ T);
- ``checkpoint``: ``jax.checkpoint`` on segments of ~√(T/eval_every) evaluation periods (memory ∝ √T, exact);
- ``truncated``: gradient through the last ``--truncation`` steps only (memory constant, biased).

Memory is XLA's compiled ``memory_analysis()`` (temporary buffers of the whole jitted gradient step, the peak
working set beyond inputs and outputs): it is a property of the compiled program, so it does not depend on what
else runs on the machine. Time is the wall time of ``--repeats`` calls after a warm-up (minimum and median
reported; on a shared CPU the minimum is the better estimate).

    python benchmarks/meta_gradient_memory.py   # writes benchmarks/results/meta_gradient_memory.json
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from rulelab.cli.arguments import CommandLineError, OneLineParser, check_choices, int_list, name_list, positive_int
from rulelab.harness.results import write_json
from rulelab.harness.train import TrainConfig
from rulelab.meta.objectives import in_log_space, make_heldout_objective
from rulelab.tasks import load_dataset

MODES = ("full", "checkpoint", "truncated")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "meta_gradient_memory.json"


def unroll_options(mode: str, num_periods: int, truncation_periods: int) -> dict[str, int | None]:
    if mode == "checkpoint":
        return {"checkpoint_every": max(1, round(math.sqrt(num_periods)))}
    if mode == "truncated":
        return {"truncation": truncation_periods}
    return {}


def measure(config: TrainConfig, dataset, mode: str, truncation_periods: int, repeats: int) -> dict:
    options = unroll_options(mode, config.num_evals, truncation_periods)
    _, objective = make_heldout_objective(config, dataset, **options)
    meta_gradient = jax.jit(jax.grad(lambda p, key: in_log_space(objective, {"learning_rate": 0.05})(p, key)[0]))
    args = ({"feedback_scale": jnp.asarray(0.0)}, jax.random.key(0))
    began = time.perf_counter()
    compiled = meta_gradient.lower(*args).compile()
    compile_s = time.perf_counter() - began
    memory = compiled.memory_analysis()
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    for repeat in range(repeats):
        began = time.perf_counter()
        jax.block_until_ready(compiled({"feedback_scale": jnp.asarray(0.01 * repeat)}, args[1]))
        times.append(time.perf_counter() - began)
    return {
        "inner_steps": config.steps,
        "mode": mode,
        **{f"{name}_steps": periods * config.eval_every if periods else None
           for name, periods in (("checkpoint_every", options.get("checkpoint_every")),
                                 ("truncation", options.get("truncation")))},
        "temp_bytes": int(memory.temp_size_in_bytes),
        "argument_bytes": int(memory.argument_size_in_bytes),
        "compile_s": compile_s,
        "step_s_min": min(times),  # the least disturbed by other processes sharing the CPU
        "step_s_median": statistics.median(times),
        "step_s": times,
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="meta_gradient_memory.py", description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int_list, default=(100, 200, 400, 800, 1600), help="inner-loop steps")
    parser.add_argument("--modes", type=name_list, default=MODES)
    parser.add_argument("--eval-every", type=positive_int, default=10, help="steps per unrolled period")
    parser.add_argument("--truncation", type=positive_int, default=10, help="periods kept by 'truncated'")
    parser.add_argument("--hidden", type=int_list, default=(64,))
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        check_choices("mode", args.modes, MODES)
        bad = [n for n in args.lengths if n % args.eval_every]
        if bad:
            raise CommandLineError(f"--lengths must be multiples of --eval-every ({args.eval_every}), got {bad}")
    except CommandLineError as error:
        print(f"meta_gradient_memory.py: error: {error}", file=sys.stderr)
        return 2
    dataset = load_dataset("digits")
    results = []
    for steps in args.lengths:
        config = TrainConfig(rule="feedback_alignment", hidden=args.hidden, optimizer="sgd", steps=steps,
                             batch_size=32, eval_every=args.eval_every)
        for mode in args.modes:
            row = measure(config, dataset, mode, args.truncation, args.repeats)
            results.append(row)
            print(f"T={steps:5d} {mode:10s} temp {row['temp_bytes'] / 2**20:8.2f} MiB  "
                  f"step {row['step_s_min']:.3f} s (min)  compile {row['compile_s']:.1f} s", flush=True)
    write_json({
        "benchmark": "meta_gradient_memory",
        "device": str(jax.devices()[0]), "platform": platform.platform(), "jax_version": jax.__version__,
        "inner_loop": {"rule": "feedback_alignment", "dataset": "digits", "hidden": list(args.hidden),
                       "optimizer": "sgd", "batch_size": 32, "eval_every": args.eval_every},
        "meta_gradient": "d final validation loss / d log feedback_scale",
        "results": results,
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
