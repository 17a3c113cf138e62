"""Host-side driver: many training runs as one compiled program, sharded over devices, run in cache-sized groups.

A sweep is a *run table*: run ``r`` has a key (from its seed index) and one value per swept hyperparameter.
``run_runs`` trains any such table; ``run_grid`` builds the table of a seeds × hyperparameters grid and returns
metrics shaped ``[hparams, seeds, evals, ...]``.

How the work is laid out (``rulelab.harness.sharding``):
- the runs axis is sharded over every local device (``NamedSharding`` on a ``runs`` mesh axis), so the same code
  spreads runs over GPUs, or over one host device per CPU core;
- runs go through in groups giving each device ``runs_per_device`` runs (on CPU a measured optimum that keeps a
  group's working set in cache, on accelerators what fits memory); whatever the sweep's size, only one group is
  resident on the devices at a time: a sweep larger than device memory runs group after group, and a group that
  still does not fit is halved and retried;
- within a group, evaluation periods run in chunks of the compiled scan, driven from a host loop with a progress bar.
"""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from rulelab.harness.sharding import (
    RunPlan,
    default_runs_per_device,
    pad_runs,
    plan_runs,
    runs_mesh,
    runs_sharding,
    shard_runs,
    tree_bytes_per_run,
)
from rulelab.harness.train import TrainProgram


def keys_for_seeds(seeds: Any, base_seed: int = 0) -> jax.Array:
    """One key per seed index: ``fold_in(key(base_seed), seed)``, so a run's key never depends on the sweep's size."""
    base = jax.random.key(base_seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(seeds, jnp.int32))


def seed_keys(num_seeds: int, base_seed: int = 0) -> jax.Array:
    """Keys of seed indices ``0 .. num_seeds - 1``."""
    return keys_for_seeds(np.arange(num_seeds), base_seed)


def as_grid(hparams: dict[str, Any]) -> dict[str, jax.Array]:
    """Hyperparameters as float32 arrays with a leading grid axis (scalars become a grid of one)."""
    grid = {k: jnp.atleast_1d(jnp.asarray(v, jnp.float32)) for k, v in hparams.items()}
    sizes = {v.shape[0] for v in grid.values()}
    if len(sizes) > 1:
        raise ValueError(f"every swept hyperparameter needs the same number of values, got {sizes}")
    return grid


def chunk_size(num_evals: int, num_chunks: int) -> int:
    """The largest divisor of ``num_evals`` that gives at least ``num_chunks`` chunks (one compiled chunk shape)."""
    target = max(1, num_evals // max(1, num_chunks))
    return max(d for d in range(1, target + 1) if num_evals % d == 0)


class RunsResult(NamedTuple):
    metrics: dict[str, np.ndarray]  # each [runs, evals, ...]
    final_state: Any  # leaves [runs, ...] on the host, or None when not kept
    compile_s: float
    run_s: float  # wall time after compilation
    plan: RunPlan
    run_cpu_s: float = float("nan")  # this process's CPU time over the same span (robust on a busy machine)


class GridResult(NamedTuple):
    metrics: dict[str, np.ndarray]  # each [hparams, seeds, evals, ...]
    final_state: Any  # leaves [hparams, seeds, ...] on the host, or None when not kept
    compile_s: float
    run_s: float
    plan: RunPlan | None = None
    run_cpu_s: float = float("nan")


def _is_out_of_memory(error: Exception) -> bool:
    return "RESOURCE_EXHAUSTED" in str(error) or "Out of memory" in str(error)


def _gather(tree: Any) -> Any:
    """Fetch to this host; in a multi-host program (``jax.distributed``) gather every host's runs first."""
    if all(x.is_fully_addressable for x in jax.tree.leaves(tree)):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


class _HostKeys:  # a plain class, hence a pytree leaf
    """Typed PRNG keys on the host, as their raw ``uint32`` data."""

    def __init__(self, data: np.ndarray):
        self.data = data


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_host(tree: Any) -> Any:
    """Copy to host memory (numpy); typed PRNG keys travel as their raw data."""
    key_mask = jax.tree.map(_is_key, tree)
    raw = jax.tree.map(lambda x, is_key: jax.random.key_data(x) if is_key else x, tree, key_mask)
    return jax.tree.map(lambda x, is_key: _HostKeys(np.asarray(x)) if is_key else np.asarray(x), _gather(raw),
                        key_mask)


def _from_host(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.wrap_key_data(x.data) if isinstance(x, _HostKeys) else x, tree)


def _concatenate_runs(parts: list[Any], num_runs: int) -> Any:
    """Stitch per-group host trees along the runs axis and drop the padding runs."""

    def join(*leaves):
        if isinstance(leaves[0], _HostKeys):
            return _HostKeys(np.concatenate([leaf.data for leaf in leaves])[:num_runs])
        return np.concatenate(leaves)[:num_runs]

    return jax.tree.map(join, *parts)


class _GroupRunner(NamedTuple):
    """Compiled pieces for one plan: ``init(keys, hparams)`` and ``run_chunk(state, hparams)``, runs sharded."""

    init: Callable
    run_chunk: Callable
    mesh: Any


def _group_runner(program: TrainProgram, evals_per_chunk: int, devices: Sequence[jax.Device] | None) -> _GroupRunner:
    mesh = runs_mesh(devices)
    sharding = runs_sharding(mesh)
    init = jax.jit(jax.vmap(program.init), out_shardings=sharding)
    run_chunk = jax.jit(
        jax.vmap(partial(program.run, num_evals=evals_per_chunk)),
        out_shardings=(sharding, sharding),
        donate_argnums=0,
    )
    return _GroupRunner(init, run_chunk, mesh)


def state_bytes_per_run(program: TrainProgram, hparams: dict[str, jax.Array]) -> int:
    """Bytes of one run's training state (parameters, optimizer and rule state), without computing it."""
    one_run = jax.eval_shape(jax.vmap(program.init), jax.random.split(jax.random.key(0), 1),
                             jax.tree.map(lambda v: v[:1], hparams))
    return tree_bytes_per_run(one_run)


def _train_groups(
    program: TrainProgram,
    keys: jax.Array,
    hparams: dict[str, jax.Array],
    plan: RunPlan,
    *,
    evals_per_chunk: int,
    devices: Sequence[jax.Device] | None,
    keep_state: bool,
    progress: bool,
    description: str,
) -> RunsResult:
    runner = _group_runner(program, evals_per_chunk, devices)
    keys, hparams = pad_runs((keys, hparams), plan.padded_runs)
    num_chunks = program.num_evals // evals_per_chunk
    metric_groups, state_groups = [], []
    compile_s = run_s = run_cpu_s = 0.0
    bar = tqdm(total=plan.num_groups * program.num_evals, desc=description, unit="eval", disable=not progress,
               leave=False)
    for group_index in range(plan.num_groups):
        group = plan.group(group_index)
        start, cpu_start = time.perf_counter(), time.process_time()
        group_keys, group_hparams = shard_runs((keys[group], jax.tree.map(lambda v: v[group], hparams)), runner.mesh)
        state = runner.init(group_keys, group_hparams)
        if group_index == 0:  # compile once; every group has the same shapes
            run_chunk = runner.run_chunk.lower(state, group_hparams).compile()
            jax.block_until_ready(state)
            compile_s = time.perf_counter() - start
            start, cpu_start = time.perf_counter(), time.process_time()
        chunks = []
        for _ in range(num_chunks):
            state, metrics = run_chunk(state, group_hparams)
            chunks.append(_gather(metrics))
            bar.update(evals_per_chunk)
        metric_groups.append({k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]})
        if keep_state:
            state_groups.append(_to_host(state))
        jax.block_until_ready(state)
        del state
        run_s += time.perf_counter() - start
        run_cpu_s += time.process_time() - cpu_start
    bar.close()
    metrics = _concatenate_runs(metric_groups, plan.num_runs)
    final_state = _from_host(_concatenate_runs(state_groups, plan.num_runs)) if keep_state else None
    return RunsResult(metrics, final_state, compile_s, run_s, plan, run_cpu_s)


def run_runs(
    program: TrainProgram,
    keys: jax.Array,
    hparams: dict[str, Any],
    *,
    num_chunks: int = 10,
    runs_per_device: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    keep_state: bool = True,
    progress: bool = True,
    description: str = "",
) -> RunsResult:
    """Train every row of a run table: ``keys`` ``[runs]`` and ``hparams`` (each value ``[runs]``).

    ``runs_per_device`` caps a group's runs per device (default: ``sharding.default_runs_per_device``, measured on
    CPU, memory-sized on accelerators); ``devices`` defaults to every local device. Metrics come back
    ``[runs, evals, ...]``. If a group runs out of device memory the group is halved and the table retried. ``keep_state=False`` skips copying final states back (large sweeps).
    """
    hparams = {k: jnp.asarray(v, jnp.float32).reshape(-1) for k, v in hparams.items()}
    num_runs = int(keys.shape[0])
    if any(v.shape[0] != num_runs for v in hparams.values()):
        raise ValueError(f"every hyperparameter column needs {num_runs} values (one per key)")
    devices = list(jax.local_devices() if devices is None else devices)
    if runs_per_device is None:
        runs_per_device = default_runs_per_device(state_bytes_per_run(program, hparams), devices[0])
    num_devices = len(devices)
    plan = plan_runs(num_runs, num_devices, runs_per_device)
    try:
        return _train_groups(program, keys, hparams, plan, evals_per_chunk=chunk_size(program.num_evals, num_chunks),
                             devices=devices, keep_state=keep_state, progress=progress, description=description)
    except Exception as error:  # noqa: BLE001  (XLA reports memory exhaustion as a runtime error)
        if not _is_out_of_memory(error) or plan.runs_per_device == 1:
            raise
        smaller = plan.runs_per_device // 2
        warnings.warn(f"out of device memory with {plan.runs_per_device} runs per device; retrying with {smaller}")
        return run_runs(program, keys, hparams, num_chunks=num_chunks, runs_per_device=smaller, devices=devices,
                        keep_state=keep_state, progress=progress, description=description)


def grid_run_table(grid: dict[str, jax.Array], num_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Hyperparameter index and seed index of every run of a grid, hyperparameters outer, seeds inner."""
    num_settings = next(iter(grid.values())).shape[0] if grid else 1
    hparam_index, seed_index = np.divmod(np.arange(num_settings * num_seeds), num_seeds)
    return hparam_index, seed_index


def run_grid(
    program: TrainProgram,
    hparams: dict[str, Any],
    *,
    num_seeds: int,
    base_seed: int = 0,
    num_chunks: int = 10,
    progress: bool = True,
    description: str = "",
    runs_per_device: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    keep_state: bool = True,
) -> GridResult:
    """Run ``program`` for every seed × hyperparameter setting; metrics come back ``[hparams, seeds, evals, ...]``.

    Seed ``i`` gets ``keys_for_seeds([i], base_seed)`` whatever ``num_seeds`` is, and every hyperparameter
    setting sees the same seeds (common random numbers across the grid).
    """
    grid = as_grid(hparams)
    hparam_index, seed_index = grid_run_table(grid, num_seeds)
    result = run_runs(
        program, keys_for_seeds(seed_index, base_seed), {k: v[hparam_index] for k, v in grid.items()},
        num_chunks=num_chunks, runs_per_device=runs_per_device, devices=devices, keep_state=keep_state,
        progress=progress, description=description,
    )
    num_settings = len(hparam_index) // num_seeds
    to_grid = lambda x: x.reshape(num_settings, num_seeds, *x.shape[1:])  # noqa: E731
    metrics = {k: to_grid(v) for k, v in result.metrics.items()}
    final_state = jax.tree.map(to_grid, result.final_state) if keep_state else None
    return GridResult(metrics, final_state, result.compile_s, result.run_s, result.plan, result.run_cpu_s)
