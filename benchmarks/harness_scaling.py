"""The harness's own scaling: host devices per CPU core, and the runs-per-device group size, by measurement.

    python benchmarks/harness_scaling.py                          # both MLP workloads, 1 and 2 host devices
    python benchmarks/harness_scaling.py --workloads digits_mlp --runs 64 --runs-per-device 1,4,16,64

Every configuration runs ``rulelab.harness.run_grid`` (the code path ``rulelab compare`` and sweeps use) on
``--runs`` runs of backprop, twice (the second call is timed after compilation, a persistent-cache hit, with
wall and CPU clocks: ``run_s`` and ``run_cpu_s``), in a fresh process per device count
(``XLA_FLAGS=--xla_force_host_platform_device_count=N`` must be set before JAX starts). Processes alternate between device counts round after round, so slow
drifts of the machine's load hit every configuration alike; medians over rounds are reported, with the load.
Writes benchmarks/results/harness_scaling.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from measure import format_table, run_context, write_result
from rulelab.harness.sharding import HOST_DEVICE_FLAG

HERE = Path(__file__).resolve().parent


def worker(args) -> None:
    """Inside one process (device count fixed): examples/s of run_grid for each runs-per-device value."""
    import jax

    from rulelab.harness.run import run_grid
    from workloads import workloads

    workload = workloads()[args.workloads]
    program = workload.make_program("backprop", args.steps)
    results = []
    for runs_per_device in [int(r) for r in args.runs_per_device.split(",")]:
        if runs_per_device * jax.device_count() > args.runs:  # the plan would shrink it to one group anyway
            continue

        def grid():
            return run_grid(program, {"learning_rate": 1e-3}, num_seeds=args.runs,
                            runs_per_device=runs_per_device, keep_state=False, progress=False)

        compile_s = grid().compile_s  # first call compiles (and fills the persistent cache)
        result = grid()  # second call: a cache hit, then the timed run
        cpu_s = result.run_cpu_s
        examples = args.runs * args.steps * workload.examples_per_step
        results.append({"runs_per_device": runs_per_device, "groups": result.plan.num_groups,
                        "padded_runs": result.plan.padded_runs, "run_s": result.run_s, "cpu_s": cpu_s,
                        "compile_s": compile_s, "examples_per_s": examples / result.run_s,
                        "examples_per_cpu_s": examples / cpu_s})
    print(json.dumps({"devices": jax.device_count(), "results": results}))


def run_worker(devices: int, workload: str, runs: int, steps: int, runs_per_device: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"{HOST_DEVICE_FLAG}={devices}", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR", "/tmp/rulelab-bench-jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    command = [sys.executable, str(HERE / "harness_scaling.py"), "--worker", "--workloads", workload,
               "--runs", str(runs), "--steps", str(steps), "--runs-per-device", runs_per_device]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=HERE).stdout
    return json.loads(output.strip().splitlines()[-1])


def summarize(samples: list[dict], workload: str, runs: int, steps: int) -> list[dict]:
    """Medians over rounds for each (devices, runs per device), with ratios to one device running one group."""
    by_config: dict[tuple[int, int], list[dict]] = {}
    for sample in samples:
        for result in sample["results"]:
            by_config.setdefault((sample["devices"], result["runs_per_device"]), []).append(result)
    rows = []
    for (devices, runs_per_device), results in sorted(by_config.items()):
        rows.append({"workload": workload, "runs": runs, "steps": steps, "devices": devices,
                     "runs_per_device": runs_per_device, "groups": results[0]["groups"],
                     "examples_per_s": statistics.median(r["examples_per_s"] for r in results),
                     "examples_per_cpu_s": statistics.median(r["examples_per_cpu_s"] for r in results),
                     "compile_s": statistics.median(r["compile_s"] for r in results), "rounds": len(results)})
    baseline = next((r for r in rows if r["devices"] == 1 and r["runs_per_device"] == runs), None)
    for row in rows:
        for clock in ("examples_per_s", "examples_per_cpu_s"):
            row[f"{clock}_vs_one_group"] = baseline and row[clock] / baseline[clock]
    return rows


TABLE = [("workload", "workload", "s"), ("devices", "devices", "d"), ("runs_per_device", "runs/device", "d"),
         ("groups", "groups", "d"), ("examples_per_s", "ex/s (wall)", ".3g"),
         ("examples_per_s_vs_one_group", "× 1 group", ".2f"), ("examples_per_cpu_s", "ex/cpu-s", ".3g"),
         ("examples_per_cpu_s_vs_one_group", "× 1 group", ".2f"), ("compile_s", "compile s", ".1f")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="digits_mlp,mnist_mlp")
    parser.add_argument("--devices", default="1,2")
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs-per-device", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="harness_scaling")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    context = run_context()
    rows = []
    for workload in args.workloads.split(","):
        samples = []
        for round_index in range(args.rounds):
            for devices in [int(d) for d in args.devices.split(",")]:
                samples.append(run_worker(devices, workload, args.runs, args.steps, args.runs_per_device))
                print(f"  {workload} round {round_index}: {devices} device(s) done; load {os.getloadavg()[0]:.1f}",
                      flush=True)
        rows.extend(summarize(samples, workload, args.runs, args.steps))
    path = write_result(args.name, {"context": context, "rows": rows})
    print(format_table(rows, TABLE))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
