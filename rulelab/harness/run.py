"""Host-side driver: a seeds × hyperparameters grid as one compiled program, run in chunks with a progress bar."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from rulelab.harness.train import TrainProgram, run_program_chunk, vmap_grid


def seed_keys(num_seeds: int, base_seed: int = 0) -> jax.Array:
    """One key per seed index; seed ``i`` gets the same key whatever ``num_seeds`` is."""
    base = jax.random.key(base_seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))


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


class GridResult(NamedTuple):
    metrics: dict[str, np.ndarray]  # each [hparams, seeds, evals, ...]
    final_state: Any
    compile_s: float
    run_s: float


def run_grid(
    program: TrainProgram,
    hparams: dict[str, Any],
    *,
    num_seeds: int,
    base_seed: int = 0,
    num_chunks: int = 10,
    progress: bool = True,
    description: str = "",
) -> GridResult:
    """Run ``program`` for every seed × hyperparameter setting, in chunks of the compiled scan."""
    grid = as_grid(hparams)
    keys = seed_keys(num_seeds, base_seed)
    evals_per_chunk = chunk_size(program.num_evals, num_chunks)
    init = jax.jit(vmap_grid(program.init, state_in=False))
    run_chunk = run_program_chunk(program, evals_per_chunk)

    start = time.perf_counter()
    state = init(keys, grid)
    compiled = run_chunk.lower(state, grid).compile()
    compile_s = time.perf_counter() - start

    start = time.perf_counter()
    chunks = []
    bar = tqdm(total=program.num_evals, desc=description, unit="eval", disable=not progress, leave=False)
    for _ in range(program.num_evals // evals_per_chunk):
        state, metrics = compiled(state, grid)
        chunks.append(jax.device_get(metrics))
        bar.update(evals_per_chunk)
    bar.close()
    jax.block_until_ready(state)
    run_s = time.perf_counter() - start
    metrics = {k: np.concatenate([c[k] for c in chunks], axis=2) for k in chunks[0]}
    return GridResult(metrics, state, compile_s, run_s)
