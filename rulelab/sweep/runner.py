"""``run_sweep``: plan, check, then train a sweep chunk by chunk into a results folder that survives interruption.

1. The config is validated and expanded into a run table (``rulelab.sweep.plan``); data are loaded and every
   compiled group's rule is checked on its own network and a batch of its data. Any problem stops here, before
   training, with one line (:class:`~rulelab.sweep.config.SweepConfigError`,
   :class:`~rulelab.sweep.checks.RuleCheckError`).
2. Runs already in the folder's chunk files are skipped; the rest are cut into chunks of at most
   ``runs_per_chunk`` runs of one group. Each group compiles once: its chunks are padded to one size, the padding
   runs are discarded. Runs are sharded over every local device.
3. Each chunk trains as one vmapped program (checkpointed with orbax every ``checkpoint_every`` evaluation
   periods when asked) and is written as one Parquet file under a temporary name, then renamed.
4. When every run is done: ``summary.json`` (final accuracy per setting, diverged runs with the step they were
   frozen at) and the standard figures.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import pandas as pd
from tqdm.auto import tqdm

from rulelab.core import Batch
from rulelab.harness.checkpoint import SegmentTrainer, train_runs
from rulelab.harness.results import write_json
from rulelab.harness.run import keys_for_seeds
from rulelab.harness.sharding import pad_runs, runs_mesh, shard_runs
from rulelab.harness.slicing import SliceSpec, take_slice
from rulelab.harness.train import make_train_program
from rulelab.nets.mlp import mlp
from rulelab.sweep.checks import RuleCheckError, contract_checks, failures_line
from rulelab.sweep.config import LEARNING_RATE, SweepConfig, SweepConfigError, validate
from rulelab.sweep.plan import Group, Run, chunk_id, group_runs, make_chunks, plan_sweep
from rulelab.sweep.store import checkpoint_dir, chunk_frame, finished_run_ids, load_results, write_chunk
from rulelab.sweep.summary import plot_sweep, summarize_sweep
from rulelab.tasks.supervised import Dataset, DatasetNotFoundError, load_dataset


class SweepResult(NamedTuple):
    frame: pd.DataFrame  # every run of this sweep, tidy (one row per run × evaluation)
    summary: dict  # empty while runs of other slices are unfinished
    out_dir: Path
    trained: int  # runs trained by this call
    reused: int  # runs already finished in out_dir


def load_sweep_dataset(config: SweepConfig) -> Dataset:
    try:
        return load_dataset(config.dataset, config.data_dir)
    except DatasetNotFoundError as error:
        raise SweepConfigError(str(error)) from None


def check_group(group: Group, runs: Sequence[Run], dataset: Dataset) -> None:
    """Trace the rule-interface checks on the group's network and a batch of its data; raise one line on failure."""
    net = mlp((dataset.num_features, *group.hidden, dataset.num_classes), group.activation)
    batch = Batch(jnp.asarray(dataset.x_train[:8]), jnp.asarray(dataset.y_train[:8]))
    traced = [name for name, _ in runs[0].hparams if name != LEARNING_RATE]
    params = jax.eval_shape(net.init, jax.random.key(0))
    results = contract_checks(group.rule, net, params, batch, options=dict(group.options), traced=traced,
                              compute=False)
    if not all(r.passed for r in results):
        raise RuleCheckError(failures_line(group.rule, results))


def prepare_sweep(config: SweepConfig) -> tuple[SweepConfig, list[Run], Dataset]:
    """Everything before training: validate, plan the run table, load the data, check every group's rule."""
    config = validate(config)
    runs = plan_sweep(config)
    dataset = load_sweep_dataset(config)
    for group, members in group_runs(runs).items():
        check_group(group, members, dataset)
    return config, runs, dataset


def chunk_inputs(chunk: Sequence[Run], base_seed: int, size: int) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Keys and traced hyperparameters of a chunk, padded to ``size`` runs and spread over the local devices."""
    keys = keys_for_seeds([run.seed for run in chunk], base_seed)
    hparams = {name: jnp.asarray([dict(run.hparams)[name] for run in chunk], jnp.float32)
               for name, _ in chunk[0].hparams}
    return shard_runs(pad_runs((keys, hparams), size), runs_mesh())


def padded_size(chunks: Sequence[Sequence[Run]]) -> int:
    """One chunk shape per group: the largest chunk, rounded up to a multiple of the device count."""
    devices = jax.local_device_count()
    return -(-max(len(c) for c in chunks) // devices) * devices


def run_sweep(
    config: SweepConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    on_segment: Callable[[str, int], None] | None = None,
    slice_spec: SliceSpec | None = None,
) -> SweepResult:
    """Run every unfinished run of ``config`` into ``out_dir``; see the module docstring for the steps.

    ``log`` receives one-line status messages; ``on_segment(chunk_id, evals_done)`` is called after each trained
    segment of a chunk (a hook for progress displays and for tests that simulate a crash). With ``slice_spec``
    this process trains only its contiguous share of the run table (``rulelab.harness.slicing``); independent
    processes can share one ``out_dir``, and whichever finds every run done writes the summary and figures.
    """
    say = log or (lambda message: None)
    config, runs, dataset = prepare_sweep(config)
    mine = list(take_slice(runs, slice_spec)) if slice_spec is not None else runs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json({"config": dataclasses.asdict(config), "runs": len(runs)}, out_dir / "sweep.json")
    finished = finished_run_ids(out_dir)
    pending = [run for run in mine if run.run_id not in finished]
    reused = len(mine) - len(pending)
    chunks_by_group = make_chunks(pending, config.execution.runs_per_chunk)
    num_chunks = sum(len(c) for c in chunks_by_group.values())
    share = f" (slice {slice_spec}: {len(mine)} runs)" if slice_spec is not None else ""
    say(f"{config.name}: {len(runs)} runs in {len(group_runs(runs))} compiled groups{share}; "
        f"{reused} already finished, {len(pending)} to train in {num_chunks} chunks")

    bar = tqdm(total=len(mine), initial=reused, desc=config.name, unit="run", disable=not progress)
    done_chunks = 0
    for group, chunks in chunks_by_group.items():
        program = make_train_program(group.train_config(config.training), dataset)
        trainer = SegmentTrainer.build(program, config.execution.checkpoint_every)
        size = padded_size(chunks)
        for chunk in chunks:
            name = chunk_id(chunk)
            directory = checkpoint_dir(out_dir, name) if config.execution.checkpoint_every else None
            hook = None if on_segment is None else (lambda evals, name=name: on_segment(name, evals))
            keys, hparams = chunk_inputs(chunk, config.base_seed, size)
            trained = train_runs(trainer, keys, hparams, checkpoint_dir=directory, on_segment=hook)
            if trained.resumed_at:
                say(f"chunk {name}: resumed from its checkpoint at evaluation {trained.resumed_at}/{program.num_evals}")
            metrics = {k: v[: len(chunk)] for k, v in trained.metrics.items()}
            write_chunk(out_dir, name, chunk_frame(chunk, metrics, config.dataset, config.training.optimizer))
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
            done_chunks += 1
            bar.set_postfix_str(f"chunk {done_chunks}/{num_chunks} {group.label}")
            bar.update(len(chunk))
    bar.close()

    frame = load_results(out_dir, [run.run_id for run in runs])
    missing = len(runs) - frame["run_id"].nunique()
    if missing:
        say(f"{missing} runs of other slices are not finished yet; the last slice to finish writes the summary")
        return SweepResult(frame, {}, out_dir, len(pending), reused)
    summary = summarize_sweep(frame, name=config.name, dataset=config.dataset)
    write_json(summary, out_dir / "summary.json")
    plot_sweep(frame, out_dir, title=f"{config.name} ({config.dataset}): best setting per rule")
    if summary["diverged_runs"]:
        say(f"{len(summary['diverged_runs'])} of {len(runs)} runs diverged (frozen at the step shown in summary.json)")
    return SweepResult(frame, summary, out_dir, len(pending), reused)

