"""Training throughput: examples × runs per second, vmapped runs versus a loop of single runs versus PyTorch.

    python benchmarks/throughput.py                       # every workload, default rules, runs 1,8,64,512
    python benchmarks/throughput.py --workloads digits_mlp --runs 1,8,64 --rules backprop,feedback_alignment

For every workload (``benchmarks/workloads.py``) and rule (taken from the registry by name; rules that are not
registered, or that a workload does not support, are skipped with a message) it measures, in one process:
- ``R`` runs vmapped in one compiled program (the harness's ``TrainProgram.run``; one evaluation per call), its
  runs axis sharded over the host devices (``--host-devices``, default one per core) as the harness does;
- a Python loop of single jitted runs on the default device (its rate does not depend on how many runs it covers);
- a plain PyTorch per-run loop of the same network, rule and optimizer (skipped if torch is not installed);
- achieved model GFLOP/s and its ratio to this machine's jitted float32 matmul peak, measured in the same run;
- XLA's memory estimate of each compiled program (arguments + outputs + temporaries − donated), per run;
- compile time, separately.
Timings are medians; the JSON (benchmarks/results/throughput.json) records the load average.
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

import torch_reference
from measure import Timing, format_table, matmul_call, matmul_peak_gflops, run_context, timed, write_result
from rulelab.harness.run import seed_keys
from rulelab.harness.sharding import runs_mesh, shard_runs, use_host_device_per_core
from rulelab.registry import list_rules
from workloads import (
    BATCH_SIZE,
    EPISODES_PER_STEP,
    LEARNING_RATE,
    RECURRENT_ACTIONS,
    RECURRENT_HIDDEN,
    RECURRENT_INPUTS,
    Workload,
    workloads,
)

DEFAULT_RULES = ("backprop", "feedback_alignment", "predictive_coding")
# The peak is re-measured in every round next to the contenders (a 1024³ product; 2048³ once at start and end).
PEAK_SIZE = 1024
PEAK_FLOPS = 2 * PEAK_SIZE**3
STEPS = 100  # per call, for every contender alike; the harness evaluates once per call, as at its default
# eval_every = 100 (an evaluation costs ≈ 2.3 steps of work)
MIN_FLOPS_PER_ROUND = 2e9  # small contenders repeat their call within a round until they have done this much


def compiled_bytes(compiled) -> int:
    """XLA's estimate of the program's memory: arguments + outputs − donated aliases + temporaries."""
    stats = compiled.memory_analysis()
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
               + stats.temp_size_in_bytes)


class Contender(NamedTuple):
    """One way of training: ``call()`` does ``examples`` training examples (all runs together) and blocks."""

    call: Callable[[], None]
    examples: int
    facts: dict  # compile time, memory, steps...


def compile_timed(jitted, *args) -> tuple[Callable, Timing]:
    """Compile ``jitted`` for ``args`` ahead of time; also return how long that took."""
    compiled = []
    timing = timed(lambda: compiled.append(jitted.lower(*args).compile()))
    return compiled[0], timing


def repeated(call: Callable[[], None], work: float) -> tuple[Callable[[], None], int]:
    """``call`` repeated enough times to do ``MIN_FLOPS_PER_ROUND`` (``work`` FLOPs each); returns it and the count."""
    times = max(1, math.ceil(MIN_FLOPS_PER_ROUND / work))

    def calls():
        for _ in range(times):
            call()

    return calls, times


def vmapped_contender(workload: Workload, rule: str, runs: int) -> Contender:
    """``runs`` runs vmapped in one compiled program (the harness's ``TrainProgram.run``, one evaluation per call)."""
    program = workload.make_program(rule, STEPS)
    hparams = {"learning_rate": jnp.full((runs,), LEARNING_RATE)}
    state = jax.jit(jax.vmap(program.init))(seed_keys(runs), hparams)
    devices = jax.device_count() if runs % jax.device_count() == 0 else 1
    if devices > 1:  # as the harness does: the runs axis split over the host devices (one per core)
        state, hparams = shard_runs((state, hparams), runs_mesh())
    run = jax.jit(jax.vmap(partial(program.run, num_evals=1)), donate_argnums=0)
    compiled, compile_time = compile_timed(run, state, hparams)
    holder = [jax.block_until_ready(compiled(state, hparams)[0])]  # first call: warm-up

    def call():
        holder[0] = jax.block_until_ready(compiled(holder[0], hparams)[0])

    examples = runs * STEPS * workload.examples_per_step
    calls, times = repeated(call, examples * workload.flops_per_example)
    program_bytes = compiled_bytes(compiled)  # of one device's share of the runs
    return Contender(calls, times * examples,
                     {"runs": runs, "devices": devices, "steps": STEPS, "compile_s": compile_time.wall_s,
                      "compile_cpu_s": compile_time.cpu_s, "program_bytes": program_bytes,
                      "bytes_per_run": program_bytes * devices / runs})  # the estimate is per device


def loop_contender(workload: Workload, rule: str, loop_runs: int) -> Contender:
    """A Python loop over ``loop_runs`` single jitted runs (compiled once, blocked once at the end)."""
    program = workload.make_program(rule, STEPS)
    hparams = {"learning_rate": jnp.asarray(LEARNING_RATE)}
    init = jax.jit(program.init)
    states = [init(key, hparams) for key in seed_keys(loop_runs)]
    run = jax.jit(partial(program.run, num_evals=1), donate_argnums=0)
    single, compile_time = compile_timed(run, states[0], hparams)
    states = [single(s, hparams)[0] for s in states]  # warm-up

    def call():
        states[:] = [single(s, hparams)[0] for s in states]
        jax.block_until_ready(states)

    examples = loop_runs * STEPS * workload.examples_per_step
    calls, times = repeated(call, examples * workload.flops_per_example)
    return Contender(calls, times * examples,
                     {"loop_runs": loop_runs, "compile_s": compile_time.wall_s, "compile_cpu_s": compile_time.cpu_s})


def torch_contender(workload: Workload, rule: str) -> Contender | None:
    """One PyTorch run (a per-run loop's rate does not depend on the number of runs)."""
    kind = "recurrent" if workload.name == "recurrent_agent" else "mlp"
    if not torch_reference.available() or rule not in torch_reference.TORCH_RULES[kind]:
        return None
    if kind == "recurrent":
        step = torch_reference.lstm_trainer(RECURRENT_INPUTS, RECURRENT_HIDDEN, RECURRENT_ACTIONS, *workload.data,
                                            episodes=EPISODES_PER_STEP)
    else:
        step = torch_reference.mlp_trainer(workload.layer_sizes, rule, workload.data.x_train,
                                           workload.data.y_train, batch_size=BATCH_SIZE)
    calls, times = repeated(step, workload.examples_per_step * workload.flops_per_example)
    return Contender(calls, times * workload.examples_per_step, {})


def interleaved_rates(contenders: dict, repeats: int) -> dict[str, dict]:
    """Examples per wall second and per CPU second of every contender, timed in ``repeats`` interleaved rounds.

    Interleaving puts every contender under the same background load; CPU time (all threads of this process)
    measures the work's own cost even when other processes share the cores. Medians over rounds.
    """
    timings = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, contender in contenders.items():
            timings[name].append(timed(contender.call))
    return {
        name: {"wall": contenders[name].examples / statistics.median(t.wall_s for t in ts),
               "cpu": contenders[name].examples / statistics.median(t.cpu_s for t in ts)}
        for name, ts in timings.items()
    }


def ratio(a: dict | None, b: dict | None, clock: str) -> float | None:
    return None if a is None or b is None else a[clock] / b[clock]


def benchmark(workload: Workload, rule: str, run_counts: list[int], repeats: int, loop_runs: int) -> list[dict]:
    contenders = {"loop": loop_contender(workload, rule, loop_runs)}
    peer = torch_contender(workload, rule)
    if peer is None:
        reason = "torch not installed" if not torch_reference.available() else "no PyTorch reference for this rule"
        print(f"  {workload.name}/{rule}: no PyTorch column ({reason})")
    else:
        contenders["torch"] = peer
    for runs in run_counts:
        contenders[runs] = vmapped_contender(workload, rule, runs)
    contenders["peak"] = Contender(matmul_call(PEAK_SIZE), PEAK_FLOPS, {})
    rates = interleaved_rates(contenders, repeats)
    peak = {clock: rates["peak"][clock] / 1e9 for clock in ("wall", "cpu")}
    loop, torch = rates["loop"], rates.get("torch")
    rows = []
    for runs in run_counts:
        rate = rates[runs]
        gflops = {clock: rate[clock] * workload.flops_per_example / 1e9 for clock in ("wall", "cpu")}
        rows.append({
            "workload": workload.name, "rule": rule, **contenders[runs].facts,
            "examples_per_s": rate["wall"], "examples_per_cpu_s": rate["cpu"],
            "loop_examples_per_s": loop["wall"], "loop_examples_per_cpu_s": loop["cpu"],
            "torch_examples_per_s": torch and torch["wall"], "torch_examples_per_cpu_s": torch and torch["cpu"],
            "speedup_vs_loop": ratio(rate, loop, "wall"), "speedup_vs_loop_cpu": ratio(rate, loop, "cpu"),
            "speedup_vs_torch": ratio(rate, torch, "wall"), "speedup_vs_torch_cpu": ratio(rate, torch, "cpu"),
            "loop_vs_torch_cpu": ratio(loop, torch, "cpu"),
            "gflops": gflops["wall"], "matmul_peak_gflops": peak["wall"],
            "peak_fraction": gflops["wall"] / peak["wall"],
            "gflops_per_cpu_s": gflops["cpu"], "matmul_peak_gflops_per_cpu_s": peak["cpu"],
            "peak_fraction_cpu": gflops["cpu"] / peak["cpu"],
            "loop_compile_s": contenders["loop"].facts["compile_s"],
        })
        print(f"  {workload.name}/{rule} runs={runs}: {rate['wall']:.0f} ex/s ({rate['cpu']:.0f} ex/cpu-s), "
              f"{rows[-1]['peak_fraction']:.1%} of peak, {rows[-1]['speedup_vs_loop']:.2f}× loop, "
              f"compile {contenders[runs].facts['compile_s']:.1f}s", flush=True)
    return rows


TABLE = [  # wall-clock rates (what a user waits for) first; per CPU-second in the JSON and the last column
    ("workload", "workload", "s"), ("rule", "rule", "s"), ("runs", "runs", "d"), ("devices", "dev", "d"),
    ("examples_per_s", "ex/s", ".3g"), ("speedup_vs_loop", "× loop", ".2f"), ("speedup_vs_torch", "× torch", ".2f"),
    ("gflops", "GFLOP/s", ".1f"), ("peak_fraction", "of peak", ".1%"), ("examples_per_cpu_s", "ex/cpu-s", ".3g"),
    ("bytes_per_run", "bytes/run", ".3g"), ("compile_s", "compile s", ".1f"),
]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="digits_mlp,mnist_mlp,recurrent_agent")
    parser.add_argument("--rules", default=",".join(DEFAULT_RULES))
    parser.add_argument("--runs", default="1,8,64,512")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-runs", type=int, default=4)
    parser.add_argument("--host-devices", type=int, default=None,
                        help="host (CPU) devices the vmapped programs shard their runs over (default: one per core)")
    parser.add_argument("--torch-threads", type=int, default=None, help="PyTorch threads (default: PyTorch's)")
    parser.add_argument("--name", default="throughput", help="results file name (benchmarks/results/NAME.json)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    available = workloads()
    unknown = [w for w in args.workloads.split(",") if w not in available]
    if unknown:
        print(f"unknown workload {unknown[0]!r}; valid: {', '.join(available)}", file=sys.stderr)
        return 2
    use_host_device_per_core(args.host_devices)  # before JAX starts its backend
    torch_reference.set_threads(args.torch_threads)
    context = run_context()
    context.update(host_devices=jax.device_count(), torch_threads=args.torch_threads)
    peak = matmul_peak_gflops()
    print(f"matmul peak {peak:.1f} GFLOP/s; load {context['loadavg']}", flush=True)
    if not torch_reference.available():
        print("torch is not installed: the PyTorch column is skipped (pip install -e '.[bench]')")
    registered = set(list_rules())
    rows = []
    for name in args.workloads.split(","):
        workload = available[name]
        for rule in args.rules.split(","):
            if rule not in registered:
                print(f"  skipping {rule}: not a registered rule")
                continue
            if workload.rules is not None and rule not in workload.rules:
                print(f"  skipping {name}/{rule}: the workload supports {', '.join(workload.rules)} only")
                continue
            rows.extend(benchmark(workload, rule, [int(r) for r in args.runs.split(",")], args.repeats,
                                  args.loop_runs))
    peak_end = matmul_peak_gflops()
    path = write_result(args.name, {
        "context": context, "matmul_peak_gflops": peak, "matmul_peak_gflops_at_end": peak_end,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": rows,
    })
    print(format_table(rows, TABLE))
    print(f"matmul peak {peak:.1f} (start) / {peak_end:.1f} (end) GFLOP/s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
