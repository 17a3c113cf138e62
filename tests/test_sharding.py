"""Runs sharded over devices and cut into cache-sized groups give the results of one unsharded program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rulelab.harness.run as run_module
from rulelab.harness.run import run_runs, seed_keys
from rulelab.harness.sharding import (
    ACCELERATOR_MAX_RUNS_PER_DEVICE,
    CPU_GROUP_STATE_BYTES,
    CPU_RUNS_PER_DEVICE,
    default_runs_per_device,
    HOST_DEVICE_FLAG,
    pad_runs,
    plan_runs,
)
from rulelab.harness.train import TrainConfig, make_train_program
from rulelab.tasks.supervised import load_dataset

TINY = TrainConfig(rule="feedback_alignment", hidden=(8,), steps=4, batch_size=8, eval_every=2)
CONTINUOUS = ("train_loss", "test_loss", "alignment_angle")
DISCRETE = ("step", "diverged_at", "test_accuracy")


def assert_same_results(a: dict, b: dict) -> None:
    """Steps, divergence and accuracies identical; losses equal up to float32 rounding, since XLA may order a
    sum differently for a different number of runs per program (angles near 0° magnify that through arccos)."""
    for name in DISCRETE:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    for name in CONTINUOUS:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=0.05 if name == "alignment_angle" else 1e-6,
                                   err_msg=name)


@pytest.fixture(scope="module")
def program():
    return make_train_program(TINY, load_dataset("digits"))


def test_plans_use_fewest_groups_and_balance_the_padding():
    plan = plan_runs(num_runs=9, num_devices=8, max_runs_per_device=64)
    assert (plan.runs_per_device, plan.num_groups, plan.padded_runs) == (2, 1, 16)
    plan = plan_runs(num_runs=100, num_devices=2, max_runs_per_device=16)
    assert plan.num_groups == 4 and plan.runs_per_device == 13 and plan.padded_runs == 104
    assert plan.group(1) == slice(26, 52)
    with pytest.raises(ValueError, match="positive"):
        plan_runs(num_runs=0, num_devices=1, max_runs_per_device=1)


class FakeAccelerator:
    platform = "gpu"

    def __init__(self, bytes_limit):
        self.bytes_limit = bytes_limit

    def memory_stats(self):
        return {"bytes_limit": self.bytes_limit} if self.bytes_limit else None


def test_group_size_is_the_cpu_optimum_or_what_fits_accelerator_memory():
    cpu = jax.devices("cpu")[0]
    assert default_runs_per_device(313_484, cpu) == CPU_RUNS_PER_DEVICE  # digits MLP: capped at the optimum
    assert default_runs_per_device(CPU_GROUP_STATE_BYTES // 3, cpu) == 3  # the group's state stays in budget
    assert default_runs_per_device(3_231_884, cpu) == 1  # MNIST-shaped MLP: one run per device
    # half of 80 GB over 4 × 1 MB of state per run
    assert default_runs_per_device(10**6, FakeAccelerator(80 * 10**9)) == ACCELERATOR_MAX_RUNS_PER_DEVICE
    assert default_runs_per_device(10**7, FakeAccelerator(80 * 10**9)) == 1000
    assert default_runs_per_device(10**12, FakeAccelerator(80 * 10**9)) == 1
    assert default_runs_per_device(10**7, FakeAccelerator(None)) == ACCELERATOR_MAX_RUNS_PER_DEVICE


def test_padding_repeats_the_last_run_and_keeps_the_rest():
    keys = seed_keys(3)
    padded_keys, padded_values = pad_runs((keys, jnp.arange(3.0)), 5)
    np.testing.assert_array_equal(padded_values, [0, 1, 2, 2, 2])
    np.testing.assert_array_equal(jax.random.key_data(padded_keys[4]), jax.random.key_data(keys[2]))


def test_groups_after_an_out_of_memory_retry_reproduce_one_program(program, monkeypatch):
    """A group that runs out of device memory is halved and retried; the smaller groups give the same results."""
    hparams = {"learning_rate": jnp.asarray([1e-3, 1e-3, 3e-3, 3e-3, 1e-2])}
    keys = seed_keys(5)
    whole = run_runs(program, keys, hparams, runs_per_device=5, progress=False)
    real = run_module._train_groups

    def limited_memory(program, keys, hparams, plan, **kwargs):
        if plan.runs_per_device > 2:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")
        return real(program, keys, hparams, plan, **kwargs)

    monkeypatch.setattr(run_module, "_train_groups", limited_memory)
    with pytest.warns(UserWarning, match="out of device memory"):
        grouped = run_runs(program, keys, hparams, runs_per_device=5, progress=False)
    assert (whole.plan.num_groups, grouped.plan.runs_per_device, grouped.plan.num_groups) == (1, 2, 3)
    assert grouped.metrics["train_loss"].shape == (5, TINY.num_evals)
    assert_same_results(whole.metrics, grouped.metrics)
    for a, b in zip(jax.tree.leaves(whole.final_state.params), jax.tree.leaves(grouped.final_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def no_memory(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")

    monkeypatch.setattr(run_module, "_train_groups", no_memory)
    # halved down to one run per device, which still does not fit: the error reaches the caller
    with (pytest.warns(UserWarning, match="out of device memory"),
          pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED")):
        run_runs(program, keys, hparams, runs_per_device=8, progress=False)


SHARDED_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from rulelab.harness.run import run_grid
    from rulelab.harness.train import TrainConfig, make_train_program
    from rulelab.tasks.supervised import load_dataset

    program = make_train_program(TrainConfig(**json.loads(sys.argv[1])), load_dataset("digits"))
    grid = {"learning_rate": [1e-3, 3e-3, 1e-2], "feedback_scale": [1.0, 0.5, 2.0]}
    sharded = run_grid(program, grid, num_seeds=3, progress=False, runs_per_device=2)
    alone = run_grid(program, grid, num_seeds=3, progress=False, runs_per_device=2, devices=jax.devices()[:1])
    np.savez(sys.argv[2], devices=jax.device_count(), sharded_devices=sharded.plan.num_devices,
             alone_devices=alone.plan.num_devices, padded=sharded.plan.padded_runs,
             **{"sharded_" + k: v for k, v in sharded.metrics.items()},
             **{"alone_" + k: v for k, v in alone.metrics.items()})
""")


def test_eight_host_devices_give_the_unsharded_results(tmp_path):
    env = {**os.environ, "XLA_FLAGS": f"{HOST_DEVICE_FLAG}=8", "JAX_PLATFORMS": "cpu"}
    config = {k: getattr(TINY, k) for k in ("rule", "hidden", "steps", "batch_size", "eval_every")}
    out = tmp_path / "sharded.npz"
    subprocess.run([sys.executable, "-c", SHARDED_SCRIPT, json.dumps(config), str(out)], env=env, check=True,
                   timeout=300)
    saved = np.load(out)
    assert int(saved["devices"]) == 8 and int(saved["sharded_devices"]) == 8 and int(saved["alone_devices"]) == 1
    assert int(saved["padded"]) == 16  # 9 runs over 8 devices, 2 each
    def metrics(prefix):
        return {k[len(prefix):]: saved[k] for k in saved.files if k.startswith(prefix) and k != prefix + "devices"}

    sharded, alone = metrics("sharded_"), metrics("alone_")
    assert sharded["train_loss"].shape == (3, 3, TINY.num_evals)
    assert_same_results(sharded, alone)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env}, capture_output=True,
                          text=True, timeout=300)


def test_one_host_device_per_core_is_asked_for_only_before_jax_starts_and_only_if_the_user_did_not_choose():
    done = _python("""
        import jax, rulelab
        first = rulelab.use_host_device_per_core(3)
        count = jax.device_count()
        print(first, count, rulelab.use_host_device_per_core(2), jax.device_count())
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3", "None", "3"]  # a started backend is left alone
    chosen = _python("import jax, rulelab; print(rulelab.use_host_device_per_core(), jax.device_count())",
                     XLA_FLAGS=f"{HOST_DEVICE_FLAG}=2")
    assert chosen.stdout.split() == ["None", "2"], chosen.stderr
    from_env = _python("import jax, rulelab; print(rulelab.use_host_device_per_core(), jax.device_count())",
                       RULELAB_HOST_DEVICES="1")
    assert from_env.stdout.split() == ["1", "1"], from_env.stderr
    bad = subprocess.run([sys.executable, "-m", "rulelab", "compare"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "RULELAB_HOST_DEVICES": "two"})
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "RULELAB_HOST_DEVICES must be a positive integer" in bad.stderr
