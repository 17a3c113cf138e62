"""Checkpointed training: long runs save their state with orbax-checkpoint and continue where they stopped.

``train_runs`` drives a :class:`~rulelab.harness.train.TrainProgram` over a run table (keys and traced
hyperparameters, one row per run) in segments of evaluation periods, with the compiled pieces of a
:class:`SegmentTrainer`. After each segment it saves the vmapped ``TrainState`` (a pytree) and the metrics so far;
called again with the same directory after a crash it restores the latest checkpoint and runs only the remaining
segments. Every segment is the same compiled function applied to the same state, so a resumed run computes
exactly what an uninterrupted one does.

orbax writes each checkpoint to a temporary folder and renames it when complete, so a kill during a save leaves
the previous checkpoint intact. Typed PRNG keys are stored as their raw ``uint32`` data.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from rulelab.harness.run import chunk_size
from rulelab.harness.train import TrainProgram


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def keys_as_data(tree: Any) -> Any:
    """Replace typed PRNG key leaves with their ``uint32`` data (what orbax can store)."""
    return jax.tree.map(lambda leaf: jax.random.key_data(leaf) if _is_key(leaf) else leaf, tree)


def keys_from_data(tree: Any, like: Any) -> Any:
    """Undo :func:`keys_as_data`, using ``like`` (same structure, typed keys) to know which leaves were keys."""
    return jax.tree.map(
        lambda leaf, reference: jax.random.wrap_key_data(leaf, impl=jax.random.key_impl(reference))
        if _is_key(reference) else leaf,
        tree, like,
    )


class CheckpointStore(NamedTuple):
    """The latest checkpoint of one pytree in ``directory``; ``step`` counts evaluation periods done."""

    manager: Any  # orbax.checkpoint.CheckpointManager

    @classmethod
    def open(cls, directory: str | Path) -> "CheckpointStore":
        import orbax.checkpoint as ocp

        options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
        return cls(ocp.CheckpointManager(Path(directory).absolute(), options=options))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, tree: Any) -> None:
        import orbax.checkpoint as ocp

        self.manager.save(step, args=ocp.args.StandardSave(keys_as_data(tree)))
        self.manager.wait_until_finished()

    def restore(self, step: int, like: Any) -> Any:
        import orbax.checkpoint as ocp

        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, keys_as_data(like))
        restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        return keys_from_data(restored, like)

    def close(self) -> None:
        self.manager.close()


class SegmentTrainer(NamedTuple):
    """A program's compiled pieces for a table of runs: ``init(keys, hparams)`` and ``run_segment(state, hparams)``.

    Build it once per program and reuse it for every chunk of the same size: the functions are compiled once.
    """

    program: TrainProgram
    init: Callable
    run_segment: Callable  # advances every run by ``segment`` evaluation periods
    segment: int

    @classmethod
    def build(cls, program: TrainProgram, every_evals: int = 0) -> "SegmentTrainer":
        """Segments of the largest divisor of ``num_evals`` not above ``every_evals`` (0: the whole run at once)."""
        every_evals = every_evals or program.num_evals
        segment = chunk_size(program.num_evals, -(-program.num_evals // every_evals))
        init = jax.jit(jax.vmap(program.init))
        run_segment = jax.jit(jax.vmap(partial(program.run, num_evals=segment)), donate_argnums=0)
        return cls(program, init, run_segment, segment)


class TrainedRuns(NamedTuple):
    metrics: dict[str, np.ndarray]  # each [runs, evals, ...]
    resumed_at: int  # evaluation periods restored from a checkpoint (0 = started fresh)


def train_runs(
    trainer: SegmentTrainer,
    keys: jax.Array,
    hparams: dict[str, jax.Array],
    *,
    checkpoint_dir: str | Path | None = None,
    on_segment: Callable[[int], None] | None = None,
) -> TrainedRuns:
    """Train every run (``keys`` ``[runs]``, each ``hparams`` value ``[runs]``) segment by segment.

    With ``checkpoint_dir`` the state and metrics are saved after every segment but the last, and a checkpoint
    already there is restored first, so only the remaining segments run. ``on_segment(evals_done)`` is called
    after each segment. The checkpoint is left in place; the caller removes it once the results are stored.
    """
    num_evals, segment = trainer.program.num_evals, trainer.segment
    state = trainer.init(keys, hparams)
    segment_shapes = jax.eval_shape(trainer.run_segment, state, hparams)[1]
    metrics = {k: np.zeros((s.shape[0], num_evals, *s.shape[2:]), s.dtype) for k, s in segment_shapes.items()}
    store = CheckpointStore.open(checkpoint_dir) if checkpoint_dir is not None else None
    resumed_at = (store.latest_step() or 0) if store is not None else 0
    try:
        if resumed_at:
            restored = store.restore(resumed_at, {"state": state, "metrics": metrics})
            state, metrics = restored["state"], {k: np.array(v) for k, v in restored["metrics"].items()}
        for done in range(resumed_at, num_evals, segment):
            state, new = trainer.run_segment(state, hparams)
            for name, values in jax.device_get(new).items():
                metrics[name][:, done:done + segment] = values
            if store is not None and done + segment < num_evals:
                store.save(done + segment, {"state": state, "metrics": metrics})
            if on_segment is not None:
                on_segment(done + segment)
    finally:
        if store is not None:
            store.close()
    return TrainedRuns(metrics, resumed_at)
