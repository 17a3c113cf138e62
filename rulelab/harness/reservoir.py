"""Reservoir harness: train a fed-back readout on a temporal pattern, switch learning off, let it run free.

``make_reservoir_train(config)`` returns a pure ``train(key, hparams) -> (metrics, traces)``; ``run_reservoir_grid``
runs it as ``jit(vmap(vmap(train)))`` over seeds × settings. Every number in ``hparams`` is traced:
``gain``, ``between_module_fraction`` and ``feedback_scale`` build the reservoir, task fields (``period``, ...) the
target, ``learning_rate`` goes to the optax optimizer and anything else to the rule.

One run: ``warmup`` steps of spontaneous closed-loop activity (readout zero), ``train`` steps in segments of
``update_every`` steps — the network runs closed loop with the current readout, then the rule updates it from
the segment — and ``test`` steps with learning off (free-running generation). Metrics:

- ``train_error``: normalised RMS error of the output produced while learning, over the last quarter of training;
- ``free_running_error``: normalised RMS error over the test window (pointwise, phase included);
- ``free_running_spectral_error``: the same window compared by amplitude spectra (phase drift ignored);
- Lorenz only: ``tent_map_distance`` between the free-running and the target z tent maps, and
  ``tent_map_floor``, the same distance for an independent stretch of the true attractor (its sampling noise).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from rulelab.core import Array, PRNGKey
from rulelab.harness.run import as_grid, seed_keys
from rulelab.harness.train import make_optimizer, vmap_grid
from rulelab.nets.reservoir import Reservoir, reservoir
from rulelab.registry import make_rule
from rulelab.rules.force import ReservoirBatch
from rulelab.tasks.temporal_patterns import (
    LORENZ_Z,
    make_task,
    normalised_error,
    spectral_error,
    task_params,
    tent_map_distance,
)

RESERVOIR_RULES = ("force", "lms_readout", "reservoir_bptt")
NET_HPARAMS = ("gain", "between_module_fraction", "feedback_scale")


class RuleDefaults(NamedTuple):
    optimizer: str
    learning_rate: float
    update_every: int  # K, steps per segment
    teacher_forced: bool  # feed the target back during training instead of the output


# FORCE's step size lives in P (SGD at rate 1 applies it exactly) and it keeps the loop closed; LMS needs a small
# fixed step (stable while η |r|² < 2); BPTT needs a window and start states that carry the target's phase, which
# only a teacher-forced run provides (a closed loop that has not learned yet drifts chaotically).
RULE_DEFAULTS: dict[str, RuleDefaults] = {
    "force": RuleDefaults("sgd", 1.0, 1, False),
    "lms_readout": RuleDefaults("sgd", 0.003, 1, False),
    "reservoir_bptt": RuleDefaults("adam", 3e-3, 50, True),
}


@dataclasses.dataclass(frozen=True)
class ReservoirConfig:
    """Static settings of one reservoir experiment; times in seconds. ``None`` takes the rule's default."""

    rule: str = "force"
    rule_options: tuple[tuple[str, Any], ...] = ()
    target: str = "sine"
    size: int = 500
    num_modules: int = 4
    connection_probability: float = 0.1
    tau: float = 0.1
    dt: float = 0.01
    warmup_time: float = 2.0
    train_time: float = 40.0
    test_time: float = 20.0
    update_every: int | None = None
    optimizer: str | None = None
    teacher_forced: bool | None = None

    def __post_init__(self):
        for field in ("tau", "dt", "train_time", "test_time"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}")
        if self.warmup_time < 0:
            raise ValueError(f"warmup_time must be non-negative, got {self.warmup_time}")
        if self.dt > self.tau:
            raise ValueError(f"dt ({self.dt}) must not exceed tau ({self.tau})")
        if self.segment_steps < 1 or self.train_steps < self.segment_steps:
            raise ValueError(f"train_time must cover at least one segment of {self.segment_steps} steps")
        make_task(self.target)

    @property
    def defaults(self) -> RuleDefaults:
        # a plugin readout rule gets the plain online defaults (SGD, one step per segment, closed loop)
        return RULE_DEFAULTS.get(self.rule, RULE_DEFAULTS["lms_readout"])

    @property
    def segment_steps(self) -> int:
        return self.update_every or self.defaults.update_every

    @property
    def optimizer_name(self) -> str:
        return self.optimizer or self.defaults.optimizer

    @property
    def forced(self) -> bool:
        return self.defaults.teacher_forced if self.teacher_forced is None else self.teacher_forced

    def steps(self, seconds: float) -> int:
        return int(round(seconds / self.dt))

    @property
    def warmup_steps(self) -> int:
        return self.steps(self.warmup_time)

    @property
    def train_steps(self) -> int:
        return self.steps(self.train_time) // self.segment_steps * self.segment_steps

    @property
    def test_steps(self) -> int:
        return self.steps(self.test_time)


def default_reservoir_hparams(config: ReservoirConfig) -> dict[str, float]:
    """Hyperparameters used when none are swept: g = 1.5, uniform connectivity, feedback on, the task's defaults."""
    task = make_task(config.target)
    hparams = {
        "gain": 1.5,
        "between_module_fraction": 1.0 - 1.0 / config.num_modules,
        "feedback_scale": 1.0,
        "learning_rate": config.defaults.learning_rate,
    }
    hparams.update({k: float(v) for k, v in task.default_params()._asdict().items()})
    return hparams


def split_hparams(config: ReservoirConfig, hparams: dict[str, Array]) -> tuple[dict, dict, Array, dict]:
    """(net, task, learning rate, rule) parts of ``hparams``."""
    task_fields = make_task(config.target).default_params()._fields
    net = {k: v for k, v in hparams.items() if k in NET_HPARAMS}
    task = {k: v for k, v in hparams.items() if k in task_fields}
    rule = {k: v for k, v in hparams.items() if k not in NET_HPARAMS + task_fields + ("learning_rate",)}
    return net, task, hparams["learning_rate"], rule


def make_network(config: ReservoirConfig) -> Reservoir:
    return reservoir(config.size, make_task(config.target).num_outputs, num_modules=config.num_modules,
                     connection_probability=config.connection_probability, time_step=config.dt / config.tau)


class SegmentCarry(NamedTuple):
    params: Any
    rule_state: Any
    opt_state: Any
    x: Array  # reservoir state [N]
    key: PRNGKey


def make_reservoir_train(config: ReservoirConfig) -> Callable[[PRNGKey, dict], tuple[dict, dict]]:
    """``train(key, hparams) -> (metrics, traces)``: one whole run, pure and jittable (see the module docstring)."""
    net = make_network(config)
    task = make_task(config.target)
    make_rule(config.rule, net, **dict(config.rule_options))  # fail here, in Python, on a bad name or option
    segment, warmup, train_steps, test_steps = (config.segment_steps, config.warmup_steps, config.train_steps,
                                                 config.test_steps)
    num_segments = train_steps // segment
    total = warmup + train_steps + test_steps
    train_window = max(1, train_steps // 4)

    def train(key: PRNGKey, hparams: dict) -> tuple[dict, dict]:
        net_hparams, task_hparams, learning_rate, rule_hparams = split_hparams(config, hparams)
        rule = make_rule(config.rule, net, **dict(config.rule_options), **rule_hparams)
        optimizer = make_optimizer(config.optimizer_name, learning_rate)
        net_key, state_key, task_key, rule_key, run_key, floor_key = jax.random.split(key, 6)
        params = net.init(net_key, **net_hparams)
        pattern = task_params(task, **task_hparams)
        targets = task.sequence(task_key, pattern, total, config.dt)[warmup:]  # [train + test, outputs]

        x, _, _ = net.run(params, net.initial_state(state_key), warmup)

        def learn_segment(carry: SegmentCarry, segment_targets: Array):
            key, rule_key = jax.random.split(carry.key)
            if config.forced:
                x, rates, outputs = net.run_forced(carry.params, carry.x, segment_targets)
            else:
                x, rates, outputs = net.run(carry.params, carry.x, segment)
            batch = ReservoirBatch(carry.x, rates, segment_targets)
            updates, rule_state, _ = rule.update(carry.params, carry.rule_state, batch, key=rule_key)
            steps, opt_state = optimizer.update(updates, carry.opt_state, carry.params)
            params = optax.apply_updates(carry.params, steps)
            return SegmentCarry(params, rule_state, opt_state, x, key), outputs

        carry = SegmentCarry(params, rule.init(rule_key, params), optimizer.init(params), x, run_key)
        train_targets, test_targets = targets[:train_steps], targets[train_steps:]
        carry, train_outputs = jax.lax.scan(learn_segment, carry, train_targets.reshape(num_segments, segment, -1))
        train_outputs = train_outputs.reshape(train_steps, -1)
        _, _, test_outputs = net.run(carry.params, carry.x, test_steps)

        metrics = {
            "train_error": normalised_error(train_outputs[-train_window:], train_targets[-train_window:]),
            "free_running_error": normalised_error(test_outputs, test_targets),
            "free_running_spectral_error": spectral_error(test_outputs, test_targets),
            "readout_norm": jnp.linalg.norm(carry.params.readout),
        }
        if config.target == "lorenz":
            metrics.update(lorenz_statistics(task, pattern, test_outputs, targets, floor_key, config.dt))
        traces = {"train_output": train_outputs, "test_output": test_outputs, "target": targets}
        return metrics, traces

    return train


def lorenz_statistics(task, pattern, test_outputs: Array, targets: Array, key: PRNGKey, dt: float) -> dict:
    """Tent-map distance of the free-running z to the target's, and of an independent true stretch (the floor)."""
    reference_z = targets[:, LORENZ_Z]
    distance, pairs = tent_map_distance(test_outputs[:, LORENZ_Z], reference_z)
    independent = task.sequence(key, pattern, test_outputs.shape[0], dt)[:, LORENZ_Z]
    floor, _ = tent_map_distance(independent, reference_z)
    return {"tent_map_distance": distance, "tent_map_pairs": pairs, "tent_map_floor": floor}


def product_grid(**values: Sequence[float]) -> dict[str, list[float]]:
    """Every combination of the given value lists, as equal-length lists (the format ``as_grid`` takes)."""
    names = list(values)
    combos = list(itertools.product(*(values[n] for n in names)))
    return {n: [float(c[i]) for c in combos] for i, n in enumerate(names)}


def broadcast_grid(hparams: dict[str, Any]) -> dict[str, Array]:
    """Float32 arrays with one leading settings axis; unswept scalars are repeated for every setting."""
    size = max(np.size(v) for v in hparams.values())
    return as_grid({k: np.broadcast_to(np.asarray(v, np.float32).ravel(), (size,)) for k, v in hparams.items()})


class ReservoirGridResult(NamedTuple):
    metrics: dict[str, np.ndarray]  # each [settings, seeds]
    traces: dict[str, np.ndarray]  # each [settings, seeds, time, outputs]
    hparams: dict[str, np.ndarray]  # each [settings]


def run_reservoir_grid(
    config: ReservoirConfig, hparams: dict[str, Any], *, num_seeds: int, base_seed: int = 0
) -> ReservoirGridResult:
    """Every seed × setting of ``hparams`` (equal-length lists, see ``product_grid``) in one compiled program."""
    grid = broadcast_grid({**default_reservoir_hparams(config), **hparams})
    train = jax.jit(vmap_grid(make_reservoir_train(config), state_in=False))
    metrics, traces = jax.device_get(train(seed_keys(num_seeds, base_seed), grid))
    return ReservoirGridResult(metrics, traces, {k: np.asarray(v) for k, v in grid.items()})


def grid_frame(result: ReservoirGridResult, **labels: Any) -> pd.DataFrame:
    """Tidy frame: one row per setting × seed with the hyperparameters and every scalar metric."""
    num_settings, num_seeds = np.shape(result.metrics["free_running_error"])
    setting, seed = np.meshgrid(np.arange(num_settings), np.arange(num_seeds), indexing="ij")
    columns: dict[str, Any] = dict(labels)
    columns.update({k: v[setting.ravel()] for k, v in result.hparams.items()})
    columns.update({"setting": setting.ravel(), "seed": seed.ravel()})
    columns.update({k: np.asarray(v, np.float64).ravel() for k, v in result.metrics.items()})
    return pd.DataFrame(columns)


def json_number(value: float) -> float | None:
    """A float for summary.json; non-finite (a diverged or silent run) becomes null."""
    return float(value) if np.isfinite(value) else None


def summarize(frame: pd.DataFrame, metric_names: Sequence[str], setting_names: Sequence[str]) -> list[dict]:
    """Per setting: its hyperparameters, each metric per seed and its median over seeds."""
    settings = []
    for _, group in frame.groupby("setting", sort=True):
        row = {name: float(group[name].iloc[0]) for name in setting_names}
        for metric in metric_names:
            values = group.sort_values("seed")[metric].to_numpy()
            row[metric] = [json_number(v) for v in values]
            row[f"{metric}_median"] = json_number(np.median(values))
        settings.append(row)
    return settings


def traces_frame(result: ReservoirGridResult, config: ReservoirConfig, *, train_tail: int) -> pd.DataFrame:
    """Long frame of target and generated output: the last ``train_tail`` training steps and the whole test."""
    train = result.traces["train_output"][:, :, -train_tail:]
    generated = np.concatenate([train, result.traces["test_output"]], axis=2)  # [settings, seeds, T, outputs]
    target = result.traces["target"][:, :, config.train_steps - train_tail:]
    settings, seeds, steps, outputs = generated.shape
    index = np.meshgrid(np.arange(settings), np.arange(seeds), np.arange(steps), np.arange(outputs), indexing="ij")
    time_s = (index[2] - train_tail) * config.dt  # 0 = learning switched off
    return pd.DataFrame({
        "setting": index[0].ravel(), "seed": index[1].ravel(), "time_s": time_s.ravel(),
        "learning": (time_s < 0).ravel(), "output": index[3].ravel(),
        "target": target.ravel(), "generated": generated.ravel(),
    })


def setting_label(hparams: dict[str, np.ndarray], setting: int) -> str:
    feedback = "feedback" if hparams["feedback_scale"][setting] else "no feedback"
    return (f"g={hparams['gain'][setting]:.2f}, between={hparams['between_module_fraction'][setting]:.2f}, "
            f"{feedback}")


def plot_generation(traces: pd.DataFrame, hparams: dict[str, np.ndarray], path: str | Path, *, title: str,
                    max_settings: int = 6) -> Path:
    """Target (dashed) against generated output for seed 0 of each setting; learning stops at t = 0."""
    from rulelab.harness.plots import plt

    seed0 = traces[traces["seed"] == 0]
    settings = sorted(seed0["setting"].unique())[:max_settings]
    outputs = sorted(seed0["output"].unique())
    fig, axes = plt.subplots(len(settings) * len(outputs), 1, figsize=(11, 1.8 * len(settings) * len(outputs)),
                             sharex=True, squeeze=False)
    for row, (setting, output) in enumerate(itertools.product(settings, outputs)):
        axis = axes[row, 0]
        part = seed0[(seed0["setting"] == setting) & (seed0["output"] == output)]
        axis.plot(part["time_s"], part["target"], "k--", linewidth=1, label="target")
        axis.plot(part["time_s"], part["generated"], linewidth=1, label="generated")
        axis.axvline(0.0, color="grey", linestyle=":", linewidth=1)
        name = f" output {output}" if len(outputs) > 1 else ""
        axis.set_title(setting_label(hparams, setting) + name, fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("time (s); learning switched off at 0")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tent_maps(result: ReservoirGridResult, config: ReservoirConfig, path: str | Path, *,
                   max_settings: int = 6) -> Path:
    """Successive z-maxima of the target and of the free-running output (seed 0 of each setting)."""
    from rulelab.harness.plots import plt
    from rulelab.tasks.temporal_patterns import tent_map_pairs

    settings = range(min(max_settings, result.traces["target"].shape[0]))
    fig, axes = plt.subplots(1, len(settings), figsize=(3.2 * len(settings), 3.2), squeeze=False)
    for axis, setting in zip(axes[0], settings):
        target_z = result.traces["target"][setting, 0, :, LORENZ_Z]
        for signal, style, label in ((target_z, "k.", "target"),
                                     (result.traces["test_output"][setting, 0, :, LORENZ_Z], "C1.", "generated")):
            pairs, valid = jax.device_get(tent_map_pairs(jnp.asarray(signal), jnp.mean(target_z), 256))
            axis.plot(pairs[valid, 0], pairs[valid, 1], style, markersize=3, label=label)
        axis.set(xlabel="z max n", ylabel="z max n+1")
        axis.set_title(setting_label(result.hparams, setting), fontsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reservoir_experiment(config: ReservoirConfig, hparams: dict[str, Any], *, num_seeds: int, base_seed: int = 0,
                         out_dir: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Run the grid; write results.parquet, traces.parquet, summary.json and PNG plots to ``out_dir``."""
    from rulelab.harness.results import write_json, write_parquet

    result = run_reservoir_grid(config, hparams, num_seeds=num_seeds, base_seed=base_seed)
    frame = grid_frame(result, rule=config.rule, target=config.target)
    metric_names = [k for k in result.metrics if k != "readout_norm"]
    summary = {
        "target": config.target, "rule": config.rule, "seeds": num_seeds, "base_seed": base_seed,
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("rule", "target")}
        | {"update_every": config.segment_steps, "optimizer": config.optimizer_name, "teacher_forced": config.forced},
        "settings": summarize(frame, metric_names, list(result.hparams)),
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_parquet(frame, out_dir / "results.parquet")
        tail = min(config.train_steps, config.test_steps)
        traces = traces_frame(result, config, train_tail=tail)
        write_parquet(traces, out_dir / "traces.parquet")
        write_json(summary, out_dir / "summary.json")
        plot_generation(traces, result.hparams, out_dir / "generation.png",
                        title=f"{config.rule} on {config.target}: target vs generated")
        if config.target == "lorenz":
            plot_tent_maps(result, config, out_dir / "tent_map.png")
    return frame, summary
